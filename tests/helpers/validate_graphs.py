"""Test calculators (Request -> Generate -> Respond, and an untagged Relay) on one registry, a good
graph, and builders of graphs and their problems: shared by tests/graphs/test_validate*.py."""

from __future__ import annotations

from typing import Any

import pytest

from graphs.calculator import Calculator, Contract, InputSet, Options, ResourceContext
from graphs.config import GraphConfig, NodeConfig, StreamRef
from graphs.errors import GraphConfigError
from graphs.pbtxt import parse_graph
from graphs.registry import Registry
from graphs.validate import validate

# --- test calculators ----------------------------------------------------------------------------


class GenerateOptions(Options):
    models_path: str
    max_num_seqs: int = 256


async def build_engine(options: Any, ctx: ResourceContext) -> Any:
    raise AssertionError("validation never builds resources")


class Base(Calculator):
    async def process(self, inputs: InputSet) -> None:
        pass


class Request(Base):
    contract = Contract.of(inputs=("HTTP_REQUEST_PAYLOAD",), outputs=("PROMPT",))


class Generate(Base):
    contract = Contract.of(
        inputs=("PROMPT", "LOOPBACK"),
        outputs=("TOKENS", "LOOPBACK"),
        side_packets=("ENGINE",),
        optional=("LOOPBACK",),
        options=GenerateOptions,
        providers={"ENGINE": build_engine},
    )


class Respond(Base):
    contract = Contract.of(inputs=("TOKENS",), outputs=("HTTP_RESPONSE_PAYLOAD",), side_packets=("ENGINE",), optional=("ENGINE",))


class Relay(Base):
    """Untagged in and out, for cycles."""

    contract = Contract.of(inputs=("",), outputs=("",))


def make_registry() -> Registry:
    registry = Registry()
    for cls in (Request, Generate, Respond, Relay):
        registry.add_calculator(cls, cls.__name__)
    return registry


GOOD = """
input_stream: "HTTP_REQUEST_PAYLOAD:input"
output_stream: "HTTP_RESPONSE_PAYLOAD:output"
node {
  name: "request"
  calculator: "Request"
  input_stream: "HTTP_REQUEST_PAYLOAD:input"
  output_stream: "PROMPT:prompt"
}
node {
  name: "llm"
  calculator: "Generate"
  input_stream: "PROMPT:prompt"
  input_stream: "LOOPBACK:loop"
  output_stream: "TOKENS:tokens"
  output_stream: "LOOPBACK:loop"
  input_side_packet: "ENGINE:engine"
  input_stream_info { tag_index: "LOOPBACK" back_edge: true }
  node_options { [type.googleapis.com/mediapipe.LLMCalculatorOptions] { models_path: "/m" max_num_seqs: 8 } }
}
node {
  calculator: "Respond"
  input_stream: "TOKENS:tokens"
  input_side_packet: "ENGINE:engine"
  output_stream: "HTTP_RESPONSE_PAYLOAD:output"
}
"""


def problems_of(config: GraphConfig | str, registry: Registry | None = None) -> list[str]:
    if isinstance(config, str):
        config = parse_graph(config, source="graph.pbtxt")
    with pytest.raises(GraphConfigError) as info:
        validate(config, registry or make_registry())
    return info.value.problems


def node(
    calculator: str,
    *,
    name: str = "",
    inputs: tuple[str, ...] = (),
    outputs: tuple[str, ...] = (),
    side: tuple[str, ...] = (),
    back_edges: tuple[str, ...] = (),
    **options: Any,
) -> NodeConfig:
    return NodeConfig(
        calculator=calculator,
        name=name,
        input_streams=tuple(StreamRef.parse(s) for s in inputs),
        output_streams=tuple(StreamRef.parse(s) for s in outputs),
        input_side_packets=tuple(StreamRef.parse(s) for s in side),
        options=options,
        back_edges=frozenset(back_edges),
    )


def graph(*nodes: NodeConfig, inputs: tuple[str, ...] = (), outputs: tuple[str, ...] = (), side: tuple[str, ...] = ()) -> GraphConfig:
    return GraphConfig(
        nodes=nodes,
        input_streams=tuple(StreamRef.parse(s) for s in inputs),
        output_streams=tuple(StreamRef.parse(s) for s in outputs),
        input_side_packets=tuple(StreamRef.parse(s) for s in side),
        source="test",
    )

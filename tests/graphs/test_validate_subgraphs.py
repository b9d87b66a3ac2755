"""Graph validation of subgraphs: expansion (OVMS's one-node graphs into ours), their options and
errors, nesting and the depth limit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from graphs.calculator import Contract, NoOptions, Options, ResourceContext
from graphs.config import NodeConfig, StreamRef
from graphs.errors import GraphConfigError
from graphs.pbtxt import load_graph
from graphs.registry import Registry, Subgraph
from graphs.validate import MAX_SUBGRAPH_DEPTH, expand_subgraphs, validate
from tests.helpers.validate_graphs import Base, Generate, GenerateOptions, Request, Respond, graph, make_registry, node, problems_of

DATA = Path(__file__).parent / "data"


class HttpLLMOptions(Options):
    """The OVMS LLMCalculatorOptions fields the test graph sets."""

    models_path: str
    max_num_seqs: int = 256
    max_num_batched_tokens: int | None = None
    cache_size: int = 0
    device: str = "CPU"
    plugin_config: str = ""
    enable_prefix_caching: bool = False
    pipeline_type: str = "AUTO"
    tool_parser: str | None = None
    reasoning_parser: str | None = None
    enable_tool_guided_generation: bool = False


def expand_http_llm(node_config: NodeConfig, options: HttpLLMOptions) -> tuple[NodeConfig, ...]:
    """OVMS's one-node LLM graph -> Request -> Generate -> Respond, keeping the outer stream names."""
    request = node_config.input("HTTP_REQUEST_PAYLOAD")
    response = node_config.output("HTTP_RESPONSE_PAYLOAD")
    engine = node_config.side_packet("LLM_NODE_RESOURCES")
    if request is None or response is None or engine is None:
        raise ValueError("needs HTTP_REQUEST_PAYLOAD, HTTP_RESPONSE_PAYLOAD and LLM_NODE_RESOURCES")
    prefix = node_config.name or "llm"
    return (
        node(
            "Request",
            name=f"{prefix}/request",
            inputs=(f"HTTP_REQUEST_PAYLOAD:{request.name}",),
            outputs=(f"PROMPT:{prefix}_prompt",),
        ),
        node(
            "Generate",
            name=f"{prefix}/generate",
            inputs=(f"PROMPT:{prefix}_prompt", f"LOOPBACK:{prefix}_loop"),
            outputs=(f"TOKENS:{prefix}_tokens", f"LOOPBACK:{prefix}_loop"),
            side=(f"ENGINE:{engine.name}",),
            back_edges=("LOOPBACK:0",),
            models_path=options.models_path,
            max_num_seqs=options.max_num_seqs,
        ),
        node(
            "Respond",
            name=f"{prefix}/respond",
            inputs=(f"TOKENS:{prefix}_tokens",),
            outputs=(f"HTTP_RESPONSE_PAYLOAD:{response.name}",),
            side=(f"ENGINE:{engine.name}",),
        ),
    )


def llm_registry() -> Registry:
    registry = make_registry()
    registry.add_subgraph(Subgraph("HttpLLMCalculator", HttpLLMOptions, expand_http_llm))
    return registry


def test_ovms_llm_graph_expands_and_validates() -> None:
    result = validate(load_graph(DATA / "ovms_llm_graph.pbtxt"), llm_registry())
    assert [(n.name, n.calculator) for n in result.nodes] == [
        ("LLMExecutor/request", Request),
        ("LLMExecutor/generate", Generate),
        ("LLMExecutor/respond", Respond),
    ]
    assert result.nodes[1].options == GenerateOptions(models_path="./", max_num_seqs=256)
    assert result.config.input_streams == (StreamRef("HTTP_REQUEST_PAYLOAD", 0, "input"),)
    assert result.config.queue_max_size == 8


def test_expand_subgraphs() -> None:
    config = load_graph(DATA / "ovms_llm_graph.pbtxt")
    expanded = expand_subgraphs(config, llm_registry())
    assert [n.calculator for n in expanded.nodes] == ["Request", "Generate", "Respond"]
    assert expanded.output_streams == config.output_streams


def test_ovms_llm_graph_without_the_subgraph() -> None:
    assert problems_of(load_graph(DATA / "ovms_llm_graph.pbtxt"))[0] == (
        "node \"LLMExecutor\" (HttpLLMCalculator): unknown calculator 'HttpLLMCalculator'"
    )


def test_subgraph_with_bad_options() -> None:
    config = graph(
        node(
            "HttpLLMCalculator",
            name="LLMExecutor",
            inputs=("HTTP_REQUEST_PAYLOAD:input",),
            outputs=("HTTP_RESPONSE_PAYLOAD:output",),
            side=("LLM_NODE_RESOURCES:llm",),
            max_num_seqs=[1],
        ),
        inputs=("input",),
        outputs=("output",),
    )
    with pytest.raises(GraphConfigError) as info:
        expand_subgraphs(config, llm_registry())
    expected = [
        'node "LLMExecutor" (HttpLLMCalculator): option models_path: Field required',
        'node "LLMExecutor" (HttpLLMCalculator): option max_num_seqs: Input should be a valid integer',
    ]
    assert info.value.problems == expected
    # validate reports the same, without follow-up noise from the unexpanded node
    assert problems_of(config, llm_registry()) == expected


def test_subgraph_expander_error() -> None:
    config = graph(node("HttpLLMCalculator", name="x", models_path="/m"))
    assert problems_of(config, llm_registry()) == [
        'node "x" (HttpLLMCalculator): cannot expand subgraph: needs HTTP_REQUEST_PAYLOAD, HTTP_RESPONSE_PAYLOAD and LLM_NODE_RESOURCES'
    ]


def test_recursive_subgraph_hits_the_depth_limit() -> None:
    registry = make_registry()
    registry.add_subgraph(Subgraph("Loop", NoOptions, lambda n, o: (n,)))
    (problem,) = problems_of(graph(node("Loop", name="l")), registry)
    assert problem.startswith('node "l" (Loop) -> node "l" (Loop) -> ')
    assert problem.endswith(f": subgraphs nest deeper than {MAX_SUBGRAPH_DEPTH} levels (does one expand into itself?)")


def test_nested_subgraph() -> None:
    registry = llm_registry()
    registry.add_subgraph(
        Subgraph(
            "Outer",
            HttpLLMOptions,
            lambda n, o: (
                NodeConfig(
                    "HttpLLMCalculator",
                    name=n.name,
                    input_streams=n.input_streams,
                    output_streams=n.output_streams,
                    input_side_packets=n.input_side_packets,
                    options=o.model_dump(exclude_unset=True),
                ),
            ),
        )
    )
    config = graph(
        node(
            "Outer",
            name="o",
            inputs=("HTTP_REQUEST_PAYLOAD:in",),
            outputs=("HTTP_RESPONSE_PAYLOAD:out",),
            side=("LLM_NODE_RESOURCES:llm",),
            models_path="/m",
        ),
        inputs=("in",),
        outputs=("out",),
    )
    assert [n.name for n in validate(config, registry).nodes] == ["o/request", "o/generate", "o/respond"]


class EmbeddingsOptions(Options):
    models_path: str
    normalize_embeddings: bool = True
    truncate: bool = False
    pooling: str = "CLS"
    target_device: str = "CPU"
    plugin_config: str = ""


class RerankOptions(Options):
    models_path: str
    max_allowed_chunks: int = 10000
    target_device: str = "CPU"
    plugin_config: str = ""


async def build_servable(options: Any, ctx: ResourceContext) -> Any:
    raise AssertionError("validation never builds resources")


@pytest.mark.parametrize(
    ("filename", "calculator", "tag", "options"),
    [
        ("ovms_embeddings_graph.pbtxt", "EmbeddingsCalculatorOV", "EMBEDDINGS_NODE_RESOURCES", EmbeddingsOptions),
        ("ovms_rerank_graph.pbtxt", "RerankCalculatorOV", "RERANK_NODE_RESOURCES", RerankOptions),
    ],
)
def test_ovms_embeddings_and_rerank_graphs_validate(filename: str, calculator: str, tag: str, options: type[Options]) -> None:
    class OVMSNode(Base):
        contract = Contract.of(
            inputs=("REQUEST_PAYLOAD",),
            outputs=("RESPONSE_PAYLOAD",),
            side_packets=(tag,),
            options=options,
            providers={tag: build_servable},
        )

    registry = Registry()
    registry.add_calculator(OVMSNode, calculator)
    (result,) = validate(load_graph(DATA / filename), registry).nodes
    assert result.options.model_dump()["models_path"] == "./"


def test_subgraph_expander_graph_config_error() -> None:
    def expand(node_config: NodeConfig, options: Options) -> tuple[NodeConfig, ...]:
        raise GraphConfigError("<subgraph>", ['node "x" (Sub): needs A', "needs B"])

    registry = make_registry()
    registry.add_subgraph(Subgraph("Sub", NoOptions, expand))
    assert problems_of(graph(node("Sub", name="x")), registry) == [
        'node "x" (Sub): needs A',
        'node "x" (Sub): needs B',
    ]

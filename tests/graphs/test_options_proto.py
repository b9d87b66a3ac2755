"""Options of users' calculators in graph.pbtxt: a message type made from the pydantic model."""

from __future__ import annotations

import enum
from typing import Any, Literal

import pytest

from graphs import Calculator, Contract, GraphConfigError, InputSet, Options
from graphs.options_proto import OptionsTypeError, declare_options_message
from graphs.pbtxt import parse_graph
from graphs.registry import Registry
from graphs.validate import validate


class Color(enum.StrEnum):
    RED = "red"
    BLUE = "blue"


class Rule(Options):
    name: str
    pattern: str
    roles: list[Literal["user", "system"]] = ["user"]


class RichOptions(Options):
    rules: list[Rule] = []
    mask: str = "[email]"
    limit: int | None = None
    ratio: float = 0.5
    enabled: bool = True
    color: Color = Color.RED
    weights: dict[str, float] = {}
    by_name: dict[str, Rule] = {}
    tags: tuple[str, ...] = ()


class RichCalculator(Calculator):
    contract = Contract.of(inputs=("IN",), outputs=("OUT",), options=RichOptions)

    async def process(self, inputs: InputSet) -> None:
        self.ctx.emit("OUT", inputs["IN"].value)


GRAPH = """
input_stream: "IN:in"
output_stream: "OUT:out"
node {
  calculator: "RichTestCalculator"
  input_stream: "IN:in"
  output_stream: "OUT:out"
  node_options { [type.googleapis.com/ovserve.RichTestCalculatorOptions] { %s } }
}
"""


@pytest.fixture(scope="module")
def registry() -> Registry:
    registry = Registry()
    registry.add_calculator(RichCalculator, "RichTestCalculator")
    return registry


def options_of(text: str, registry: Registry) -> Any:
    graph = validate(parse_graph(GRAPH % text, source="test"), registry)
    return graph.nodes[0].options


def test_every_field_kind_round_trips(registry: Registry) -> None:
    options = options_of(
        """
        rules { name: "a" pattern: "x.*" roles: "user" roles: "system" }
        rules { name: "b" pattern: "y" }
        mask: "#" limit: 5 ratio: 0.25 enabled: false color: "blue"
        weights { key: "k" value: 1.5 }
        by_name { key: "r" value { name: "n" pattern: "p" } }
        tags: "t1" tags: "t2"
        """,
        registry,
    )
    assert options == RichOptions(
        rules=[Rule(name="a", pattern="x.*", roles=["user", "system"]), Rule(name="b", pattern="y")],
        mask="#",
        limit=5,
        ratio=0.25,
        enabled=False,
        color=Color.BLUE,
        weights={"k": 1.5},
        by_name={"r": Rule(name="n", pattern="p")},
        tags=("t1", "t2"),
    )


def test_unset_fields_keep_their_defaults(registry: Registry) -> None:
    assert options_of("", registry) == RichOptions()


def test_a_misspelt_field_is_a_parse_error_with_its_position(registry: Registry) -> None:
    with pytest.raises(GraphConfigError) as info:
        parse_graph(GRAPH % 'maks: "#"', source="test")
    assert "maks" in str(info.value)


def test_pydantic_still_validates_values(registry: Registry) -> None:
    with pytest.raises(GraphConfigError) as info:
        options_of('color: "green"', registry)
    assert "color" in str(info.value)


def test_a_type_the_text_format_cannot_spell_is_refused_with_the_field_named() -> None:
    class Bad(Options):
        anything: Any = None

    with pytest.raises(OptionsTypeError, match=r"Bad\.anything"):
        declare_options_message("BadOptionsTestCalculator", Bad)


def test_stock_calculators_can_use_the_uniform_name_too() -> None:
    import calculators  # noqa: F401

    graph = parse_graph(
        """
        input_stream: "REQUEST:r"
        input_stream: "GENERATION:g"
        node { calculator: "DetokenizerCalculator" input_stream: "REQUEST:r" input_stream: "GENERATION:g"
               input_side_packet: "LLM:llm" output_stream: "TEXT:t"
               node_options { [type.googleapis.com/ovserve.DetokenizerCalculatorOptions] { skip_special_tokens: false } } }
        """,
        source="test",
    )
    assert graph.nodes[0].options == {"skip_special_tokens": False}

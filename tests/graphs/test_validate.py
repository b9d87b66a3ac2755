"""Graph validation: a good graph, every kind of problem, all reported at once
(subgraph expansion: test_validate_subgraphs.py)."""

from __future__ import annotations

import pytest

from graphs.calculator import NoOptions
from graphs.config import NodeConfig, StreamRef
from graphs.errors import GraphConfigError
from graphs.pbtxt import parse_graph
from graphs.validate import ValidatedGraph, validate
from tests.helpers.validate_graphs import GOOD, Generate, GenerateOptions, Request, Respond, graph, make_registry, node, problems_of

# --- a good graph --------------------------------------------------------------------------------


def test_valid_graph() -> None:
    result = validate(parse_graph(GOOD), make_registry())
    assert isinstance(result, ValidatedGraph)
    assert [n.name for n in result.nodes] == ["request", "llm", "Respond_2"]
    assert [n.calculator for n in result.nodes] == [Request, Generate, Respond]
    assert result.nodes[1].options == GenerateOptions(models_path="/m", max_num_seqs=8)
    assert isinstance(result.nodes[0].options, NoOptions)
    assert result.nodes[1].config.back_edges == frozenset({"LOOPBACK:0"})


def test_side_packet_from_graph_input_side_packet() -> None:
    config = graph(
        node("Respond", inputs=("TOKENS:t",), outputs=("HTTP_RESPONSE_PAYLOAD:out",), side=("ENGINE:shared",)),
        inputs=("t",),
        outputs=("out",),
        side=("shared",),
    )
    assert [n.name for n in validate(config, make_registry()).nodes] == ["Respond_0"]


def test_auto_name_does_not_collide_with_explicit_name() -> None:
    config = graph(
        node("Relay", inputs=("a",), outputs=("b",)),
        node("Relay", name="Relay_0", inputs=("b",), outputs=("c",)),
        inputs=("a",),
    )
    assert [n.name for n in validate(config, make_registry()).nodes] == ["Relay_0_2", "Relay_0"]


# --- each kind of problem ------------------------------------------------------------------------


def test_unknown_calculator_suggests_close_names() -> None:
    config = graph(node("Generat", name="llm", inputs=("x",)), inputs=("x",))
    assert problems_of(config) == ["node \"llm\" (Generat): unknown calculator 'Generat'; did you mean 'Generate'?"]
    config = graph(node("Zzz", inputs=("x",)), inputs=("x",))
    assert problems_of(config) == ["node \"Zzz_0\" (Zzz): unknown calculator 'Zzz'"]


def test_tags_not_in_contract() -> None:
    config = graph(
        node(
            "Request",
            name="r",
            inputs=("HTTP_REQUEST_PAYLOAD:in", "BODY:in2"),
            outputs=("PROMPT:p", "EXTRA:e"),
            side=("MODEL:m",),
        ),
        inputs=("in", "in2"),
        side=("m",),
    )
    assert problems_of(config) == [
        'node "r" (Request): input stream "BODY:in2" has tag "BODY", which Request does not take (input streams: HTTP_REQUEST_PAYLOAD)',
        'node "r" (Request): output stream "EXTRA:e" has tag "EXTRA", which Request does not take (output streams: PROMPT)',
        'node "r" (Request): input side packet "MODEL:m" has tag "MODEL", which Request does not take (input side packets: none)',
    ]


def test_untagged_stream_for_tagged_calculator() -> None:
    config = graph(
        node("Request", name="r", inputs=("HTTP_REQUEST_PAYLOAD:in", "plain"), outputs=("PROMPT:p",)),
        inputs=("in", "plain"),
    )
    assert problems_of(config) == [
        'node "r" (Request): input stream "plain" has no tag, which Request does not take (input streams: HTTP_REQUEST_PAYLOAD)'
    ]


def test_tag_bound_twice() -> None:
    config = graph(
        node("Request", name="r", inputs=("HTTP_REQUEST_PAYLOAD:a", "HTTP_REQUEST_PAYLOAD:0:b"), outputs=("PROMPT:p",)),
        inputs=("a", "b"),
    )
    assert problems_of(config) == [
        'node "r" (Request): input stream HTTP_REQUEST_PAYLOAD:0 is bound twice ("HTTP_REQUEST_PAYLOAD:a", "HTTP_REQUEST_PAYLOAD:b")'
    ]


def test_required_tags_missing() -> None:
    config = graph(node("Generate", name="llm", models_path="/m"))
    assert problems_of(config) == [
        'node "llm" (Generate): required input stream tag "PROMPT" is missing',
        'node "llm" (Generate): required output stream tag "TOKENS" is missing',
        'node "llm" (Generate): required input side packet tag "ENGINE" is missing',
    ]


def test_stream_produced_by_nobody() -> None:
    config = graph(node("Relay", name="r", inputs=("nowhere",), outputs=("out",)), outputs=("out",))
    assert problems_of(config) == ['node "r" (Relay): input stream "nowhere" is produced by no node and is not a graph input_stream']


def test_stream_with_two_producers() -> None:
    config = graph(
        node("Relay", name="a", inputs=("in",), outputs=("x",)),
        node("Relay", name="b", inputs=("in",), outputs=("x",)),
        inputs=("in", "x"),
    )
    assert problems_of(config) == ['stream "x" has 3 producers: graph input_stream, node "a" (Relay), node "b" (Relay)']


def test_graph_output_produced_by_nobody() -> None:
    config = graph(node("Relay", name="r", inputs=("in",), outputs=("x",)), inputs=("in",), outputs=("y",))
    assert problems_of(config) == ['graph output_stream "y" is produced by no node']


def test_graph_input_may_be_a_graph_output() -> None:
    validate(graph(inputs=("x",), outputs=("x",)), make_registry())


def test_missing_side_packet() -> None:
    config = graph(
        node("Respond", name="resp", inputs=("TOKENS:t",), outputs=("HTTP_RESPONSE_PAYLOAD:o",), side=("ENGINE:e",)),
        inputs=("t",),
    )
    assert problems_of(config) == [
        'node "resp" (Respond): input side packet "ENGINE:e" is neither a graph input_side_packet nor built by any node\'s provider'
    ]


def test_side_packet_with_two_sources() -> None:
    config = graph(
        node("Generate", name="a", inputs=("PROMPT:p",), outputs=("TOKENS:t1",), side=("ENGINE:e",), models_path="/a"),
        node("Generate", name="b", inputs=("PROMPT:p",), outputs=("TOKENS:t2",), side=("ENGINE:e",), models_path="/b"),
        inputs=("p",),
    )
    assert problems_of(config) == ['side packet "e" has 2 sources: node "a" (Generate), node "b" (Generate)']


def test_output_side_packet_is_not_supported() -> None:
    config = graph(
        NodeConfig("Relay", name="r", input_streams=(StreamRef("", 0, "a"),), output_side_packets=(StreamRef("OUT", 0, "s"),)),
        inputs=("a",),
    )
    assert problems_of(config) == [
        'node "r" (Relay): required untagged output stream is missing',
        'node "r" (Relay): output side packet "OUT:s": Relay produces no output side packets',
    ]


def test_cycle_without_back_edge() -> None:
    config = graph(
        node("Relay", name="a", inputs=("z",), outputs=("x",)),
        node("Relay", name="b", inputs=("x",), outputs=("y",)),
        node("Relay", name="c", inputs=("y",), outputs=("z",)),
    )
    assert problems_of(config) == [
        'cycle without a back edge: node "a" (Relay) -[x]-> node "b" (Relay) -[y]-> node "c" (Relay) '
        '-[z]-> node "a" (Relay); if the last stream loops back on purpose, mark it in node "a" (Relay) with '
        'input_stream_info { tag_index: ":0" back_edge: true }'
    ]


def test_cycle_broken_by_back_edge() -> None:
    config = graph(
        node("Relay", name="a", inputs=("z",), outputs=("x",), back_edges=(":0",)),
        node("Relay", name="b", inputs=("x",), outputs=("z",)),
    )
    validate(config, make_registry())


def test_self_loop_without_back_edge() -> None:
    text = GOOD.replace('input_stream_info { tag_index: "LOOPBACK" back_edge: true }', "")
    assert problems_of(text) == [
        'cycle without a back edge: node "llm" (Generate) -[LOOPBACK:loop]-> node "llm" (Generate); '
        'if the last stream loops back on purpose, mark it in node "llm" (Generate) with '
        'input_stream_info { tag_index: "LOOPBACK:0" back_edge: true }'
    ]


def test_back_edge_on_missing_input() -> None:
    text = GOOD.replace('tag_index: "LOOPBACK"', 'tag_index: "LOOPBACK:1"')
    problems = problems_of(text)
    assert 'node "llm" (Generate): input_stream_info marks "LOOPBACK:1" as a back edge, but the node has no such input stream' in problems
    assert any(p.startswith("cycle without a back edge") for p in problems)


def test_bad_options_one_problem_per_field() -> None:
    config = graph(
        node(
            "Generate",
            name="llm",
            inputs=("PROMPT:p",),
            outputs=("TOKENS:t",),
            side=("ENGINE:e",),
            max_num_seqs="many",
            bogus=1,
        ),
        inputs=("p",),
    )
    assert problems_of(config) == [
        'node "llm" (Generate): option models_path: Field required',
        'node "llm" (Generate): option max_num_seqs: Input should be a valid integer, unable to parse string as an integer',
        'node "llm" (Generate): option bogus: Extra inputs are not permitted',
    ]


def test_options_for_calculator_without_options() -> None:
    config = graph(node("Relay", name="r", inputs=("a",), outputs=("b",), skip_special_tokens=True), inputs=("a",))
    assert problems_of(config) == ['node "r" (Relay): option skip_special_tokens: Extra inputs are not permitted']


def test_duplicate_node_names() -> None:
    config = graph(
        node("Relay", name="same", inputs=("a",), outputs=("b",)),
        node("Relay", name="same", inputs=("b",), outputs=("c",)),
        inputs=("a",),
    )
    assert problems_of(config) == ['node name "same" is used by 2 nodes']


def test_all_problems_are_reported_at_once() -> None:
    text = """
    input_stream: "HTTP_REQUEST_PAYLOAD:input"
    output_stream: "HTTP_RESPONSE_PAYLOAD:output"
    node {
      name: "request"
      calculator: "Requets"
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
      node_options { [type.googleapis.com/mediapipe.LLMCalculatorOptions] { max_num_seqs: 8 } }
    }
    node { name: "llm" calculator: "Respond" input_stream: "TOKENS:tokenz" input_side_packet: "ENGINE:engin" }
    """
    assert problems_of(text) == [
        'node name "llm" is used by 2 nodes',
        "node \"request\" (Requets): unknown calculator 'Requets'; did you mean 'Request'?",
        'node "llm" (Generate): option models_path: Field required',
        'node "llm" (Respond): required output stream tag "HTTP_RESPONSE_PAYLOAD" is missing',
        'node "llm" (Respond): input stream "TOKENS:tokenz" is produced by no node and is not a graph input_stream',
        'graph output_stream "HTTP_RESPONSE_PAYLOAD:output" is produced by no node',
        'node "llm" (Respond): input side packet "ENGINE:engin" is neither a graph input_side_packet nor built by any node\'s provider',
        'cycle without a back edge: node "llm" (Generate) -[LOOPBACK:loop]-> node "llm" (Generate); '
        'if the last stream loops back on purpose, mark it in node "llm" (Generate) with '
        'input_stream_info { tag_index: "LOOPBACK:0" back_edge: true }',
    ]


def test_error_names_the_source() -> None:
    with pytest.raises(GraphConfigError) as info:
        validate(graph(node("Nope")), make_registry())
    assert info.value.source == "test"
    assert str(info.value).startswith("invalid graph test:\n  - ")

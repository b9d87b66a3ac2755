"""graph.pbtxt parsing: OVMS-exported graphs, MediaPipe text-format features, and errors with positions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from graphs.config import StreamRef
from graphs.errors import GraphConfigError
from graphs.pbtxt import KNOWN_OPTIONS_TYPES, load_graph, parse_graph

DATA = Path(__file__).parent / "data"


def parse_error(text: str) -> GraphConfigError:
    with pytest.raises(GraphConfigError) as info:
        parse_graph(text, source="graph.pbtxt")
    assert info.value.source == "graph.pbtxt"
    return info.value


def only_node_options(text: str) -> tuple[str | None, dict[str, object]]:
    (node,) = parse_graph(text).nodes
    return node.options_type, node.options


# --- OVMS graphs as its export tools write them ----------------------------------------------------


def test_ovms_llm_graph() -> None:
    graph = load_graph(DATA / "ovms_llm_graph.pbtxt")
    assert graph.source == str(DATA / "ovms_llm_graph.pbtxt")
    assert graph.queue_max_size == 8
    assert graph.input_streams == (StreamRef("HTTP_REQUEST_PAYLOAD", 0, "input"),)
    assert graph.output_streams == (StreamRef("HTTP_RESPONSE_PAYLOAD", 0, "output"),)
    (node,) = graph.nodes
    assert node.name == "LLMExecutor"
    assert node.calculator == "HttpLLMCalculator"
    assert node.input_streams == (
        StreamRef("LOOPBACK", 0, "loopback"),
        StreamRef("HTTP_REQUEST_PAYLOAD", 0, "input"),
    )
    assert node.output_streams == (
        StreamRef("LOOPBACK", 0, "loopback"),
        StreamRef("HTTP_RESPONSE_PAYLOAD", 0, "output"),
    )
    assert node.input_side_packets == (StreamRef("LLM_NODE_RESOURCES", 0, "llm"),)
    assert node.back_edges == frozenset({"LOOPBACK:0"})
    assert node.input_stream_handler == "SyncSetInputStreamHandler"
    assert node.options_type == "mediapipe.LLMCalculatorOptions"
    assert node.options == {
        "models_path": "./",
        "max_num_batched_tokens": 8192,
        "cache_size": 10,
        "max_num_seqs": 256,
        "device": "CPU",
        "plugin_config": '{"KV_CACHE_PRECISION":"u8"}',
        "enable_prefix_caching": True,
        "pipeline_type": "LM_CB",
        "tool_parser": "hermes3",
        "reasoning_parser": "qwen3",
        "enable_tool_guided_generation": True,
    }
    assert type(node.options["cache_size"]) is int  # uint64 stays an int, not MessageToDict's string


def test_ovms_llm_graph_from_export_model_py() -> None:
    (node,) = load_graph(DATA / "ovms_llm_graph_export_model_py.pbtxt").nodes
    assert node.options == {
        "models_path": "./",
        "cache_size": 2,
        "max_num_seqs": 256,
        "dynamic_split_fuse": False,  # set to the default value, still present (proto2 presence)
        "device": "CPU",
        "plugin_config": "{}",
        "enable_prefix_caching": False,
        "draft_models_path": "./Qwen-Qwen2.5-0.5B-Instruct",
        "response_parser": "qwen3",
    }


def test_ovms_embeddings_graph() -> None:
    graph = load_graph(DATA / "ovms_embeddings_graph.pbtxt")
    assert graph.queue_max_size is None
    (node,) = graph.nodes
    assert node.name == "sentence-transformers/all-MiniLM-L6-v2"
    assert node.calculator == "EmbeddingsCalculatorOV"
    assert node.input_side_packets == (StreamRef("EMBEDDINGS_NODE_RESOURCES", 0, "embeddings_servable"),)
    assert node.options_type == "mediapipe.EmbeddingsCalculatorOVOptions"
    assert node.options == {
        "models_path": "./",
        "normalize_embeddings": True,
        "target_device": "CPU",
        "plugin_config": '{ "NUM_STREAMS": "1"}',
        "pooling": "MEAN",
        "truncate": False,
    }
    assert node.back_edges == frozenset()
    assert node.input_stream_handler is None


def test_ovms_rerank_graph() -> None:
    (node,) = load_graph(DATA / "ovms_rerank_graph.pbtxt").nodes
    assert node.calculator == "RerankCalculatorOV"
    assert node.options_type == "mediapipe.RerankCalculatorOVOptions"
    assert node.options == {
        "models_path": "./",
        "max_allowed_chunks": 10000,
        "target_device": "CPU",
        "plugin_config": '{ "NUM_STREAMS": "1"}',
    }


# --- text format features --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "[type.googleapis.com/mediapipe.RerankCalculatorOVOptions] {",
        "[type.googleapis.com/mediapipe.RerankCalculatorOVOptions]: {",
        "[type.googleapis.com / mediapipe.RerankCalculatorOVOptions] {",
        "[ type.googleapis.com /mediapipe.RerankCalculatorOVOptions ]: {",
    ],
)
def test_any_type_url_spellings(header: str) -> None:
    text = f'node {{ calculator: "C" node_options: {{ {header} models_path: "m" }} }} }}'
    assert only_node_options(text) == ("mediapipe.RerankCalculatorOVOptions", {"models_path": "m"})


def test_older_extension_options_style() -> None:
    text = """
    node {
      calculator: "HttpLLMCalculator"
      options { [mediapipe.LLMCalculatorOptions.ext] { models_path: "/m" max_num_seqs: 4 } }
    }
    """
    assert only_node_options(text) == ("mediapipe.LLMCalculatorOptions", {"models_path": "/m", "max_num_seqs": 4})


def test_same_type_in_options_and_node_options_uses_options() -> None:
    # MediaPipe's rule: for the same type, `options` wins over `node_options`.
    text = """
    node {
      calculator: "C"
      options { [mediapipe.RerankCalculatorOVOptions.ext] { models_path: "from options" } }
      node_options { [type.googleapis.com/mediapipe.RerankCalculatorOVOptions] { models_path: "other" } }
    }
    """
    assert only_node_options(text)[1] == {"models_path": "from options"}


def test_ovserve_options() -> None:
    text = """
    node { calculator: "Detokenizer"
           node_options { [type.googleapis.com/ovserve.DetokenizerCalculatorOptions] { skip_special_tokens: false } } }
    """
    assert only_node_options(text) == ("ovserve.DetokenizerCalculatorOptions", {"skip_special_tokens": False})
    empty = 'node { calculator: "T" node_options { [type.googleapis.com/ovserve.TokenizerCalculatorOptions] {} } }'
    assert only_node_options(empty) == ("ovserve.TokenizerCalculatorOptions", {})


def test_nested_messages_enums_and_floats() -> None:
    text = """
    node { calculator: "C" node_options { [type.googleapis.com/mediapipe.LLMCalculatorOptions] {
      cache_size: 1099511627776
      sparse_attention_config { mode: XATTENTION xattention_threshold: 0.1 }
      cache_eviction_config { start_size: 32 kv_crush_config { anchor_point_mode: MEAN } }
    } } }
    """
    _, options = only_node_options(text)
    assert options == {
        "cache_size": 1 << 40,
        "cache_eviction_config": {"start_size": 32, "kv_crush_config": {"anchor_point_mode": "MEAN"}},
        "sparse_attention_config": {"mode": "XATTENTION", "xattention_threshold": 0.1},
    }


def test_pooling_alias_is_normalized() -> None:
    text = 'node { calculator: "E" node_options { [type.googleapis.com/mediapipe.EmbeddingsCalculatorOVOptions] { pooling: LAST_TOKEN } } }'
    assert only_node_options(text)[1] == {"pooling": "LAST"}


def test_streams_comments_commas_and_quotes() -> None:
    text = """
    # a comment line
    input_stream: 'IN:in', output_stream: "OUT:out"  # trailing comment
    input_side_packet: "MODEL:model"
    node {
      name: 'n', calculator: "C",
      input_stream: "IN:in"
      input_stream: "EXTRA:2:extra"
      input_stream: "plain"
      output_stream: "OUT:out"
      external_input: "OLD:old"
      input_side_packet: "MODEL:model"
    }
    """
    graph = parse_graph(text)
    assert graph.input_streams == (StreamRef("IN", 0, "in"),)
    assert graph.input_side_packets == (StreamRef("MODEL", 0, "model"),)
    (node,) = graph.nodes
    assert node.input_streams == (StreamRef("IN", 0, "in"), StreamRef("EXTRA", 2, "extra"), StreamRef("", 0, "plain"))
    # external_input is MediaPipe's old name for input_side_packet
    assert node.input_side_packets == (StreamRef("MODEL", 0, "model"), StreamRef("OLD", 0, "old"))
    assert node.options == {} and node.options_type is None


def test_back_edge_tag_index_is_normalized() -> None:
    text = """
    node {
      calculator: "C"
      input_stream_info { tag_index: "LOOPBACK" back_edge: true }
      input_stream_info { tag_index: "OTHER:2" back_edge: true }
      input_stream_info { tag_index: ":1" back_edge: true }
      input_stream_info { tag_index: "NOT_BACK" back_edge: false }
    }
    """
    (node,) = parse_graph(text).nodes
    assert node.back_edges == frozenset({"LOOPBACK:0", "OTHER:2", ":1"})


def test_graph_level_input_stream_handler_is_inherited() -> None:
    text = """
    input_stream_handler { input_stream_handler: "ImmediateInputStreamHandler" }
    node { calculator: "A" }
    node { calculator: "B" input_stream_handler { input_stream_handler: "SyncSetInputStreamHandler" } }
    """
    a, b = parse_graph(text).nodes
    assert a.input_stream_handler == "ImmediateInputStreamHandler"
    assert b.input_stream_handler == "SyncSetInputStreamHandler"


def test_mediapipe_scheduler_fields_are_accepted() -> None:
    text = """
    num_threads: 4
    max_queue_size: -1
    executor { name: "" type: "ThreadPoolExecutor" }
    node { calculator: "C" max_in_flight: 2 source_layer: 1 buffer_size_hint: 3 executor: "" }
    """
    assert len(parse_graph(text).nodes) == 1


# --- OVMS_GRAPH_QUEUE_MAX_SIZE -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("# OVMS_GRAPH_QUEUE_MAX_SIZE: 4", 4),
        ("#OVMS_GRAPH_QUEUE_MAX_SIZE:0", 0),
        ("   #  OVMS_GRAPH_QUEUE_MAX_SIZE : 12  ", 12),
        ("# some other comment", None),
    ],
)
def test_queue_max_size(line: str, expected: int | None) -> None:
    assert parse_graph(f'{line}\nnode {{ calculator: "C" }}\n').queue_max_size == expected


def test_queue_max_size_auto_is_the_cpu_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert parse_graph("# OVMS_GRAPH_QUEUE_MAX_SIZE: AUTO\n").queue_max_size == 6
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert parse_graph("# OVMS_GRAPH_QUEUE_MAX_SIZE: AUTO\n").queue_max_size == 16


@pytest.mark.parametrize("value", ["-1", "many"])
def test_queue_max_size_invalid(value: str) -> None:
    error = parse_error(f'node {{ calculator: "C" }}\n# OVMS_GRAPH_QUEUE_MAX_SIZE: {value}\n')
    assert error.problems == [f"2:30: OVMS_GRAPH_QUEUE_MAX_SIZE must be 0, a positive integer or AUTO, got {value!r}"]


# --- errors --------------------------------------------------------------------------------------------


def test_syntax_error_has_line_and_column() -> None:
    error = parse_error('node {\n  calculator: "C"\n  input_stream: "a"\n')
    assert error.problems == ['3:17: Expected "}".']


def test_unknown_field_has_line_and_column() -> None:
    error = parse_error('node {\n  calculator: "C"\n  input_streams: "a"\n}\n')
    assert error.problems == ['3:3: Message type "mediapipe.CalculatorGraphConfig.Node" has no field named "input_streams".']
    assert "graph.pbtxt" in str(error)


def test_unknown_option_field() -> None:
    error = parse_error(
        'node {\n  calculator: "C"\n  node_options { [type.googleapis.com/mediapipe.LLMCalculatorOptions] {\n    max_num_seq: 4 } }\n}\n'
    )
    assert error.problems == ['4:5: Message type "mediapipe.LLMCalculatorOptions" has no field named "max_num_seq".']


def test_option_of_wrong_type() -> None:
    error = parse_error(
        'node { calculator: "C"\n node_options { [type.googleapis.com/mediapipe.LLMCalculatorOptions] { max_num_seqs: "x" } } }'
    )
    (problem,) = error.problems
    assert problem.startswith("2:") and "Couldn't parse integer" in problem


def test_unknown_options_type_names_it_and_the_known_types() -> None:
    error = parse_error(
        'node {\n  calculator: "C"\n  node_options: {\n    [type.googleapis.com / mediapipe.FooOptions]: { a: 1 }\n  }\n}\n'
    )
    (problem,) = error.problems
    assert problem.startswith("4:5: unknown options type 'mediapipe.FooOptions'; known types: ")
    for known in KNOWN_OPTIONS_TYPES:
        assert known in problem
    assert "mediapipe.LLMCalculatorOptions" in KNOWN_OPTIONS_TYPES
    assert "ovserve.DetokenizerCalculatorOptions" in KNOWN_OPTIONS_TYPES


def test_unknown_options_extension() -> None:
    error = parse_error('node {\n  calculator: "C"\n  options { [mediapipe.FooOptions.ext] { a: 1 } }\n}')
    (problem,) = error.problems
    assert problem.startswith("3:35: unknown options extension 'mediapipe.FooOptions.ext'; known types: ")


def test_raw_any_with_unknown_type() -> None:
    error = parse_error('node { name: "n" calculator: "C" node_options { type_url: "type.googleapis.com/x.Y" value: "" } }')
    (problem,) = error.problems
    assert problem.startswith("node \"n\" (C): unknown options type 'x.Y'; known types: ")


def test_semantic_problems_are_all_reported_with_positions() -> None:
    text = """input_stream: "bad spec"
node {
  name: "n"
  calculator: "C"
  input_stream: "TAG:x:y"
  input_stream_info { tag_index: "lower" back_edge: true }
  node_options { [type.googleapis.com/mediapipe.RerankCalculatorOVOptions] { models_path: "a" } }
  node_options { [type.googleapis.com/ovserve.TokenizerCalculatorOptions] { } }
}
node { input_stream: "x" }
"""
    error = parse_error(text)
    assert error.problems == [
        "6:34: node \"n\" (C): malformed input_stream_info tag_index 'lower'",
        'node "n" (C): a node takes one options message, got mediapipe.RerankCalculatorOVOptions, ovserve.TokenizerCalculatorOptions',
        "5:17: node \"n\" (C): input_stream: malformed stream spec 'TAG:x:y' (expected NAME, TAG:NAME or TAG:INDEX:NAME)",
        "node #2: no calculator",
        "1:15: graph input_stream: malformed stream spec 'bad spec' (expected NAME, TAG:NAME or TAG:INDEX:NAME)",
    ]


def test_load_graph_missing_file(tmp_path: Path) -> None:
    with pytest.raises(GraphConfigError) as info:
        load_graph(tmp_path / "missing.pbtxt")
    assert info.value.source == str(tmp_path / "missing.pbtxt")
    assert info.value.problems[0].startswith("cannot read graph: ")


def test_load_graph_with_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "graph.pbtxt"
    path.write_bytes(b'\xef\xbb\xbfnode { calculator: "C" }\n')
    assert load_graph(path).nodes[0].calculator == "C"

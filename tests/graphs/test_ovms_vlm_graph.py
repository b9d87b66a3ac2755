"""OVMS's graph for a vision-language model (tests/graphs/data/ovms_vlm_graph.pbtxt, the shape of
OVMS's VLM demo) parses and expands into the stock chain with its pipeline_type kept, for every
value OVMS accepts there; the servable in tests/e2e/test_ovms_vlm.py serves it."""

from __future__ import annotations

from pathlib import Path

import pytest

import calculators  # noqa: F401 - registers HttpLLMCalculator and the stock chain
from calculators.llm.options import LLMOptions
from graphs import default_registry
from graphs.errors import GraphConfigError
from graphs.pbtxt import load_graph, parse_graph
from graphs.validate import validate

VLM_GRAPH = Path(__file__).parent / "data" / "ovms_vlm_graph.pbtxt"
CHAIN = [
    "OpenAIRequestCalculator",
    "TokenizerCalculator",
    "ContinuousBatchingLLMCalculator",
    "DetokenizerCalculator",
    "OpenAIResponseCalculator",
]


def test_the_vlm_graph_parses_as_ovms_writes_it() -> None:
    (node,) = load_graph(VLM_GRAPH).nodes
    assert node.calculator == "HttpLLMCalculator"
    assert node.options == {
        "pipeline_type": "VLM_CB",  # a bare enum identifier, as OVMS writes it
        "models_path": "./",
        "plugin_config": "{}",
        "enable_prefix_caching": False,
        "cache_size": 1,
        "max_num_seqs": 256,
        "device": "CPU",
    }


@pytest.mark.parametrize("pipeline_type", ["VLM_CB", "VLM", "AUTO"])
def test_it_expands_into_the_chain_with_its_pipeline_type(pipeline_type: str) -> None:
    text = VLM_GRAPH.read_text().replace("pipeline_type: VLM_CB", f"pipeline_type: {pipeline_type}")
    result = validate(parse_graph(text, source=str(VLM_GRAPH)), default_registry)
    assert [type_name(n.calculator) for n in result.nodes] == CHAIN
    llm = result.nodes[2].options
    assert isinstance(llm, LLMOptions)
    assert llm.pipeline_type == pipeline_type and llm.models_path == "./" and llm.cache_size == 1


def test_a_quoted_pipeline_type_is_a_clear_error() -> None:
    """The proto field is an enum: OVMS takes only the bare name, and so do we."""
    text = VLM_GRAPH.read_text().replace("pipeline_type: VLM_CB", 'pipeline_type: "VLM_CB"')
    with pytest.raises(GraphConfigError, match="PipelineType"):
        parse_graph(text, source="quoted")


def type_name(calculator: object) -> str:
    return getattr(calculator, "__name__", str(calculator))

"""Speculative decoding and prompt lookup without an engine: node options -> the draft model's
WorkerSpec part and load errors; request fields -> checks and GenerationConfig fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from calculators.llm.generation_config import engine_config
from calculators.llm.options import LLMOptions, Speculation
from calculators.llm.speculative import draft_spec
from calculators.openai.protocol import ChatCompletionRequest, CompletionRequest
from calculators.openai.support import check_speculation
from graphs.errors import InvalidRequestError, UnavailableError

DRAFT = Speculation("draft")
LOOKUP = Speculation("prompt_lookup", 3)


def chat(**fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields})


def completion(**fields: Any) -> CompletionRequest:
    return CompletionRequest.model_validate({"model": "m", "prompt": "hi", **fields})


@pytest.fixture
def draft_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "draft"
    folder.mkdir()
    (folder / "openvino_model.xml").write_text("<net/>")
    return folder


# --- node options ------------------------------------------------------------------------------


def test_speculation_from_options() -> None:
    assert LLMOptions(models_path="m").speculation() is None
    assert LLMOptions(models_path="m", draft_models_path="d").speculation() == DRAFT
    assert LLMOptions(models_path="m", plugin_config='{"prompt_lookup": true}').speculation() == LOOKUP
    assert LLMOptions(models_path="m", plugin_config='{"prompt_lookup": true}', max_ngram_size=5).speculation() == Speculation(
        "prompt_lookup", 5
    )
    assert LLMOptions(models_path="m", plugin_config='{"prompt_lookup": false}').speculation() is None
    assert LLMOptions(models_path="m", plugin_config="not json").speculation() is None
    assert "draft_models_path" not in " ".join(LLMOptions(models_path="m", draft_models_path="d").unsupported())


def test_draft_spec_inherits_the_main_models_scheduler(draft_dir: Path) -> None:
    options = LLMOptions(models_path="m", draft_models_path="draft", max_num_seqs=7, num_kv_blocks=16, dynamic_split_fuse=False)
    spec = draft_spec(options, draft_dir.parent)
    assert spec == {
        "models_path": str(draft_dir),
        "device": "CPU",
        "scheduler": {
            "cache_size": 0,
            "num_kv_blocks": 16,
            "max_num_seqs": 7,
            "max_num_batched_tokens": 256,
            "dynamic_split_fuse": False,
            "enable_prefix_caching": False,
        },
    }


def test_draft_options_override(draft_dir: Path) -> None:
    options = LLMOptions(
        models_path="m",
        draft_models_path=str(draft_dir),  # absolute: base_path does not matter
        draft_device="CPU",
        draft_cache_size=2,
        draft_max_num_seqs=3,
        draft_max_num_batched_tokens=1024,
        draft_dynamic_split_fuse=False,
    )
    spec = draft_spec(options, Path("/elsewhere"))
    assert spec is not None
    assert spec["scheduler"] == {
        "cache_size": 2,
        "num_kv_blocks": 0,
        "max_num_seqs": 3,
        "max_num_batched_tokens": 1024,
        "dynamic_split_fuse": False,
        "enable_prefix_caching": False,
    }


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"draft_models_path": "missing"}, "no OpenVINO model"),
        ({"draft_device": "CPU"}, "draft_device needs draft_models_path"),
        ({"draft_models_path": "draft", "plugin_config": '{"prompt_lookup": true}'}, "do not combine"),
        ({"draft_models_path": "draft", "pipeline_type": "LM"}, "LM_CB only"),
        ({"plugin_config": '{"prompt_lookup": true}', "device": "NPU"}, "LM_CB only"),
    ],
)
def test_bad_node_options_fail_the_load(draft_dir: Path, fields: dict[str, Any], message: str) -> None:
    with pytest.raises(UnavailableError, match=message):
        draft_spec(LLMOptions(models_path="m", **fields), draft_dir.parent)


def test_no_draft_no_spec(draft_dir: Path) -> None:
    assert draft_spec(LLMOptions(models_path="m"), draft_dir.parent) is None
    assert draft_spec(LLMOptions(models_path="m", plugin_config='{"prompt_lookup": true}'), draft_dir.parent) is None


# --- request fields ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "speculation", "expected"),
    [
        ({}, DRAFT, {"num_assistant_tokens": 5}),
        ({"num_assistant_tokens": 4}, DRAFT, {"num_assistant_tokens": 4}),
        ({"assistant_confidence_threshold": 0.4}, DRAFT, {"assistant_confidence_threshold": 0.4}),
        ({}, LOOKUP, {"num_assistant_tokens": 5, "max_ngram_size": 3}),
        ({"num_assistant_tokens": 2, "max_ngram_size": 7}, LOOKUP, {"num_assistant_tokens": 2, "max_ngram_size": 7}),
        ({}, None, {}),
    ],
)
def test_engine_fields(fields: dict[str, Any], speculation: Speculation | None, expected: dict[str, Any]) -> None:
    for params in (chat(**fields), completion(**fields)):
        check_speculation(params, speculation)
        config = engine_config(params, 10, speculation=speculation)
        assert {k: v for k, v in config.items() if k != "max_new_tokens"} == expected


@pytest.mark.parametrize(
    ("fields", "speculation", "param"),
    [
        ({"num_assistant_tokens": 3}, None, "num_assistant_tokens"),
        ({"assistant_confidence_threshold": 0.3}, None, "assistant_confidence_threshold"),
        ({"max_ngram_size": 3}, None, "max_ngram_size"),
        ({"max_ngram_size": 3}, DRAFT, "max_ngram_size"),
        ({"assistant_confidence_threshold": 0.3}, LOOKUP, "assistant_confidence_threshold"),
        ({"num_assistant_tokens": 3, "assistant_confidence_threshold": 0.3}, DRAFT, "assistant_confidence_threshold"),
        ({"n": 2, "temperature": 1.0}, DRAFT, "n"),
        ({"best_of": 2}, LOOKUP, "best_of"),
        ({"num_beams": 2}, DRAFT, "num_beams"),
    ],
)
def test_refused(fields: dict[str, Any], speculation: Speculation | None, param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        check_speculation(chat(**fields), speculation)
    assert caught.value.param == param


@pytest.mark.parametrize(
    "fields",
    [{"num_assistant_tokens": 0}, {"num_assistant_tokens": 65}, {"assistant_confidence_threshold": 0}, {"max_ngram_size": 0}],
)
def test_out_of_range_fields_do_not_validate(fields: dict[str, Any]) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        chat(**fields)

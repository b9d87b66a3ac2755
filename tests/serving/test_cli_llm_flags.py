"""The single-model LLM flags (derived from calculators/llm/options.py) reach the LLM node options."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from calculators.llm.options import LLMOptions
from serving.cli import build_parser, settings_from_args
from serving.settings import LLMFlags

EVERY_FLAG = [
    "--target_device", "GPU", "--plugin_config", '{"NUM_STREAMS": 1}', "--cache_size", "0", "--max_num_seqs", "4",
    "--max_num_batched_tokens", "64", "--dynamic_split_fuse", "false", "--enable_prefix_caching", "true",
    "--best_of_limit", "3", "--max_tokens_limit", "100", "--stream_interval_ms", "2.5", "--max_prompt_tokens", "50",
    "--pipeline_type", "LM_CB", "--draft_models_path", "draft", "--draft_device", "CPU",
    "--draft_max_num_batched_tokens", "32", "--draft_cache_size", "1", "--draft_max_num_seqs", "2",
    "--draft_dynamic_split_fuse", "true", "--lora_adapter", "a=/x/a", "--tool_parser", "hermes3",
    "--reasoning_parser", "qwen3", "--kv_cache_precision", "u8", "--max_ngram_size", "2", "--cache_dir", "/c",
]  # fmt: skip


def test_every_flag_becomes_a_valid_node_option() -> None:
    settings = settings_from_args(build_parser().parse_args(["--model_path", "m", *EVERY_FLAG]))
    options = settings.llm.node_options()
    assert options == {
        "device": "GPU",
        "plugin_config": json.dumps({"NUM_STREAMS": 1, "KV_CACHE_PRECISION": "u8", "CACHE_DIR": "/c"}),
        "cache_size": 0,
        "max_num_seqs": 4,
        "max_num_batched_tokens": 64,
        "dynamic_split_fuse": False,
        "enable_prefix_caching": True,
        "best_of_limit": 3,
        "max_tokens_limit": 100,
        "stream_interval_ms": 2.5,
        "max_prompt_tokens": 50,
        "pipeline_type": "LM_CB",
        "draft_models_path": str(Path("draft").resolve()),
        "draft_device": "CPU",
        "draft_max_num_batched_tokens": 32,
        "draft_cache_size": 1,
        "draft_max_num_seqs": 2,
        "draft_dynamic_split_fuse": True,
        "lora_adapters": [{"name": "a", "path": "/x/a"}],
        "tool_parser": "hermes3",
        "reasoning_parser": "qwen3",
        "max_ngram_size": 2,
    }
    LLMOptions(models_path="m", **options)  # type: ignore[arg-type]  # every value is one the node takes
    assert (settings.llm.target_device, settings.llm.plugin_config) == ("GPU", '{"NUM_STREAMS": 1}')


def test_no_flags_no_options() -> None:
    settings = settings_from_args(build_parser().parse_args(["--model_path", "m"]))
    assert settings.llm == LLMFlags() and settings.llm.node_options() == {}


def test_plugin_config_folding() -> None:
    assert LLMFlags(plugin_properties={"CACHE_DIR": "/c"}).node_options() == {"plugin_config": '{"CACHE_DIR": "/c"}'}
    with pytest.raises(ValueError, match="JSON object"):
        LLMFlags({"plugin_config": "[1]"}, {"KV_CACHE_PRECISION": "u8"}).node_options()


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--max_num_seqs", "0", "expected a positive integer"),
        ("--cache_size", "-1", "expected 0 or a positive integer"),
        ("--stream_interval_ms", "nan", "expected 0 or a positive number"),
        ("--pipeline_type", "X", "invalid choice"),
        ("--lora_adapter", "no-path", "expected NAME=PATH"),
    ],
)
def test_bad_values_are_refused_when_parsed(flag: str, value: str, says: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--model_path", "m", flag, value])
    assert exited.value.code == 2 and says in capsys.readouterr().err


def test_the_flags_the_docs_name_exist() -> None:
    """docs/ovms.md (the OVMS flag map) and the README name only flags `ovserve` takes."""
    root = Path(__file__).resolve().parents[2]
    known = {name for action in build_parser()._actions for name in action.option_strings}
    for page in ("README.md", "docs/ovms.md"):
        named = set(re.findall(r"(?<![\w-])--[a-z][a-z_-]+", (root / page).read_text(encoding="utf-8")))
        assert named - known == set(), page

"""The LLM node's options are written once (calculators/llm/options.py): the CLI flags, the
pull-mode options and the docs table are derived from them, so none can drift."""

from __future__ import annotations

import os
import re
from pathlib import Path

from calculators.llm.flags import LLM_FLAGS, PULL_OPTIONS, options_table
from calculators.llm.options import LLMOptions

ROOT = Path(__file__).resolve().parents[3]
ENGINE_DOC = ROOT / "docs" / "engine.md"
TABLE = re.compile(r"(<!-- options table:[^\n]*-->\n)(.*?)(<!-- end of options table -->)", re.S)


def test_the_docs_table_is_the_options() -> None:
    text = ENGINE_DOC.read_text(encoding="utf-8")
    match = TABLE.search(text)
    assert match is not None, "docs/engine.md lost its options table markers"
    if os.environ.get("OVSERVE_WRITE_DOCS") == "1":
        text = text[: match.start(2)] + options_table() + text[match.end(2) :]
        ENGINE_DOC.write_text(text, encoding="utf-8")
        match = TABLE.search(text)
        assert match is not None
    assert match.group(2) == options_table(), "run OVSERVE_WRITE_DOCS=1 pytest tests/calculators/llm/test_flags.py"


def test_flag_names_as_ovms_and_before() -> None:
    assert [flag.name for flag in LLM_FLAGS] == [
        "target_device", "plugin_config", "cache_size", "max_num_seqs", "max_num_batched_tokens",
        "dynamic_split_fuse", "enable_prefix_caching", "best_of_limit", "max_tokens_limit", "stream_interval_ms",
        "max_prompt_tokens", "pipeline_type", "draft_models_path", "draft_device", "draft_max_num_batched_tokens",
        "draft_cache_size", "draft_max_num_seqs", "draft_dynamic_split_fuse", "lora_adapter", "tool_parser",
        "reasoning_parser", "kv_cache_precision", "max_ngram_size",
    ]  # fmt: skip
    assert all(flag.option in LLMOptions.model_fields and flag.help for flag in LLM_FLAGS)


def test_what_pull_mode_writes() -> None:
    assert PULL_OPTIONS == {
        "target_device": "device",
        "plugin_config": "plugin_config",
        "cache_size": "cache_size",
        "max_num_seqs": "max_num_seqs",
        "max_num_batched_tokens": "max_num_batched_tokens",
        "enable_prefix_caching": "enable_prefix_caching",
        "dynamic_split_fuse": "dynamic_split_fuse",
        "max_tokens_limit": "max_tokens_limit",
        "pipeline_type": "pipeline_type",  # OVMS: --source_model ... --task text_generation --pipeline_type VLM
        "tool_parser": "tool_parser",
        "reasoning_parser": "reasoning_parser",
    }


def test_types_and_bounds_come_from_the_fields() -> None:
    flags = {flag.name: flag for flag in LLM_FLAGS}
    assert (flags["max_num_seqs"].kind, flags["max_num_seqs"].minimum) == ("int", 1)
    assert (flags["cache_size"].kind, flags["cache_size"].minimum) == ("int", 0)
    assert (flags["stream_interval_ms"].kind, flags["enable_prefix_caching"].kind) == ("float", "bool")
    assert flags["pipeline_type"].choices == ("LM", "LM_CB", "VLM", "VLM_CB", "AUTO")
    assert flags["kv_cache_precision"].choices == ("u8", "u4", "f16", "f32", "bf16")
    assert flags["kv_cache_precision"].plugin_property == "KV_CACHE_PRECISION"
    assert flags["lora_adapter"].repeat and flags["lora_adapter"].option == "lora_adapters"

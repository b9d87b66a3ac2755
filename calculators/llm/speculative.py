"""Speculative decoding at load time: the draft model's part of the WorkerSpec (node options
`draft_*`, OVMS's rule: unset ones take the main model's values) and the checks that make a
servable with a bad combination fail to load with a message that names it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from calculators.llm.options import LLMOptions
from graphs.errors import UnavailableError

log = logging.getLogger("ovserve.llm")


def draft_spec(options: LLMOptions, base_path: Path) -> dict[str, Any] | None:
    """{"models_path", "device", "scheduler"} for the worker's `draft_model(...)`, or None."""
    _check_prompt_lookup(options)
    if options.draft_models_path is None:
        if options.draft_device is not None:
            raise UnavailableError("draft_device needs draft_models_path")
        return None
    if options.prompt_lookup():
        raise UnavailableError('draft_models_path and plugin_config {"prompt_lookup": true} do not combine: choose one')
    if options.pipeline != "LM_CB":  # genai 2026.4 builds a draft for text models only
        raise UnavailableError(
            f"speculative decoding (draft_models_path) is served with pipeline_type LM_CB only (this servable runs {options.pipeline})"
        )
    folder = (base_path / options.draft_models_path).resolve()
    if not (folder / "openvino_model.xml").is_file():
        raise UnavailableError(f"draft_models_path: no OpenVINO model (openvino_model.xml) in {folder}")
    if options.draft_block_size is not None:
        log.warning("draft_block_size is accepted but not used: openvino-genai 2026.4 takes the block size from the device")
    cache_gb = options.draft_cache_size
    blocks = options.num_kv_blocks if cache_gb is None else 0  # the main model's cache setting, as given
    scheduler = {
        "cache_size": cache_gb if cache_gb is not None else (0 if blocks else options.cache_size),
        "num_kv_blocks": blocks,
        "max_num_seqs": options.draft_max_num_seqs or options.max_num_seqs,
        "max_num_batched_tokens": options.draft_max_num_batched_tokens or options.max_num_batched_tokens,
        "dynamic_split_fuse": options.dynamic_split_fuse if options.draft_dynamic_split_fuse is None else options.draft_dynamic_split_fuse,
        "enable_prefix_caching": options.enable_prefix_caching,
    }
    return {"models_path": str(folder), "device": options.draft_device or options.device, "scheduler": scheduler}


def _check_prompt_lookup(options: LLMOptions) -> None:
    """Prompt lookup runs on the continuous-batching pipeline only."""
    if options.prompt_lookup() and options.stateful:
        raise UnavailableError('plugin_config {"prompt_lookup": true} is served with pipeline_type LM_CB or VLM_CB only')

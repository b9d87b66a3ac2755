"""KV-cache options at load time: OVMS's `cache_eviction_config` node option (its schema,
CacheEvictionOptions, lives in options.py; it is checked here, so a bad one fails the servable
with a message naming the field, not the first engine step), the `kv_cache_precision` node option
folded into the plugin_config, and the engine side that turns the checked eviction settings into
genai's `CacheEvictionConfig`.

genai 2026.4 facts (measured on CPU): `cache_size: 0` with no `num_kv_blocks` makes a dynamic KV
cache that starts empty and grows as requests need blocks; eviction's sizes are in tokens and
must be multiples of the device's KV block size (32 on CPU), with `max_cache_size` larger than
`start_size + recent_size`; genai checks the multiples only in the first step that evicts.
"""

from __future__ import annotations

from typing import Any

from calculators.llm.options import LLMOptions
from graphs.errors import UnavailableError

# The KV block size genai 2026.4 uses on CPU (tokens per block); other devices choose their own.
CPU_BLOCK_SIZE = 32


def eviction_spec(options: LLMOptions) -> dict[str, Any] | None:
    """The checked cache_eviction_config as plain data for the worker (None when not set)."""
    config = options.cache_eviction_config
    if config is None:
        return None
    where = "cache_eviction_config"
    if options.stateful:
        raise UnavailableError(f"{where} is served with pipeline_type LM_CB or VLM_CB only (the stateful pipeline has no scheduler)")
    sizes = {"start_size": config.start_size, "recent_size": config.recent_size, "max_cache_size": config.max_cache_size}
    for name, value in sizes.items():
        if not value:
            raise UnavailableError(f"{where}.{name} must be set to a number of tokens above 0")
    start, recent, most = config.start_size or 0, config.recent_size or 0, config.max_cache_size or 0
    if most <= start + recent:
        raise UnavailableError(f"{where}.max_cache_size ({most}) must be larger than start_size + recent_size ({start} + {recent})")
    if options.device.split(".")[0] == "CPU":
        uneven = [f"{name} ({value})" for name, value in sizes.items() if value and value % CPU_BLOCK_SIZE]
        if uneven:
            verb = "must be" if len(uneven) == 1 else "must each be"
            raise UnavailableError(f"{where}: {', '.join(uneven)} {verb} a multiple of the CPU's KV block size ({CPU_BLOCK_SIZE} tokens)")
    return config.model_dump()


def with_kv_cache_precision(options: LLMOptions, properties: dict[str, object]) -> dict[str, object]:
    """The plugin_config with the node's `kv_cache_precision` as KV_CACHE_PRECISION (a different
    KV_CACHE_PRECISION in plugin_config too is an error: which one was meant?)."""
    precision = options.kv_cache_precision
    if not precision:
        return properties
    given = properties.get("KV_CACHE_PRECISION")
    if given is not None and str(given).lower() != precision.lower():
        raise UnavailableError(f"kv_cache_precision {precision!r} and plugin_config KV_CACHE_PRECISION {given!r} disagree: set one")
    return {**properties, "KV_CACHE_PRECISION": precision}


def genai_eviction(ov_genai: Any, spec: dict[str, Any]) -> Any:
    """genai's CacheEvictionConfig from eviction_spec()'s data (in the engine worker)."""
    crush = spec.get("kv_crush_config")
    kvcrush = None
    if crush is not None:
        mode = getattr(ov_genai.KVCrushAnchorPointMode, crush["anchor_point_mode"])
        kvcrush = ov_genai.KVCrushConfig(crush["budget"], mode, crush["rng_seed"])
    return ov_genai.CacheEvictionConfig(
        spec["start_size"],
        spec["recent_size"],
        spec["max_cache_size"],
        getattr(ov_genai.AggregationMode, spec["aggregation_mode"]),
        apply_rotation=spec["apply_rotation"],
        snapkv_window_size=spec["snapkv_window_size"],
        kvcrush_config=kvcrush,
    )

"""KV-cache options at load time: cache_eviction_config checks and its genai form, and the
kv_cache_precision node option folded into the plugin_config."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from calculators.llm.kv_cache import eviction_spec, genai_eviction, with_kv_cache_precision
from calculators.llm.options import LLMOptions
from graphs.errors import UnavailableError

GOOD = {"start_size": 32, "recent_size": 64, "max_cache_size": 256}


def options(**fields: object) -> LLMOptions:
    return LLMOptions.model_validate({"models_path": "m", **fields})


def test_eviction_is_served_and_mapped() -> None:
    crush = {"budget": 2, "anchor_point_mode": "MEAN"}
    opts = options(cache_eviction_config={**GOOD, "aggregation_mode": "NORM_SUM", "kv_crush_config": crush})
    assert opts.unsupported() == []
    spec = eviction_spec(opts)
    assert spec is not None and spec["max_cache_size"] == 256 and spec["aggregation_mode"] == "NORM_SUM"
    import openvino_genai as ov_genai

    config = genai_eviction(ov_genai, spec)
    assert (config.get_start_size(), config.get_recent_size(), config.get_max_cache_size()) == (32, 64, 256)
    assert config.aggregation_mode == ov_genai.AggregationMode.NORM_SUM
    assert config.kvcrush_config.budget == 2 and config.kvcrush_config.anchor_point_mode == ov_genai.KVCrushAnchorPointMode.MEAN
    assert eviction_spec(options()) is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"recent_size": 32, "max_cache_size": 128}, "cache_eviction_config.start_size must be set"),
        ({**GOOD, "max_cache_size": 96}, "max_cache_size (96) must be larger than start_size + recent_size (32 + 64)"),
        ({**GOOD, "start_size": 10, "max_cache_size": 250}, "start_size (10), max_cache_size (250) must each be a multiple of the CPU's"),
    ],
)
def test_bad_eviction_fails_the_load(fields: dict[str, object], message: str) -> None:
    with pytest.raises(UnavailableError, match="cache_eviction_config") as caught:
        eviction_spec(options(cache_eviction_config=fields))
    assert message in str(caught.value)


def test_eviction_checks_elsewhere() -> None:
    assert eviction_spec(options(device="GPU", cache_eviction_config={**GOOD, "start_size": 16})) is not None  # GPU picks its block size
    with pytest.raises(UnavailableError, match="LM_CB only"):
        eviction_spec(options(pipeline_type="LM", cache_eviction_config=GOOD))
    with pytest.raises(ValidationError, match="frobnicate"):
        options(cache_eviction_config={**GOOD, "frobnicate": 1})
    with pytest.raises(ValidationError, match="aggregation_mode"):
        options(cache_eviction_config={**GOOD, "aggregation_mode": "MAX"})


def test_kv_cache_precision_node_option() -> None:
    assert with_kv_cache_precision(options(), {"NUM_STREAMS": 1}) == {"NUM_STREAMS": 1}
    assert with_kv_cache_precision(options(kv_cache_precision="u8"), {}) == {"KV_CACHE_PRECISION": "u8"}
    assert with_kv_cache_precision(options(kv_cache_precision="u8"), {"KV_CACHE_PRECISION": "U8"}) == {"KV_CACHE_PRECISION": "u8"}
    with pytest.raises(UnavailableError, match="disagree"):
        with_kv_cache_precision(options(kv_cache_precision="u8"), {"KV_CACHE_PRECISION": "u4"})


def test_cache_size_zero_is_dynamic() -> None:
    assert options(cache_size=0).cache_size == 0

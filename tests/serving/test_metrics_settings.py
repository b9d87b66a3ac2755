"""Metrics settings (flags and config.json's `monitoring`) and the sink that records them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from calculators.llm.telemetry import RequestRecord
from serving.app import create_app
from serving.config_file import ConfigFileError
from serving.loading import metrics_settings
from serving.metrics import METRICS, Metrics, metrics_middleware
from serving.metrics_catalog import BY_NAME, OVMS_DEFAULT, VLLM_BY_NAME
from serving.metrics_ovms import render
from serving.servable import ServableManager
from serving.settings import Settings


def config(tmp_path: Path, monitoring: object) -> Path:
    path = tmp_path / "config.json"
    body: dict[str, object] = {"mediapipe_config_list": [{"name": "g"}]}
    if monitoring is not None:
        body["monitoring"] = monitoring
    path.write_text(json.dumps(body))
    return path


def test_off_unless_the_flag_or_the_file_enables_it(tmp_path: Path) -> None:
    assert metrics_settings(Settings()) == (False, ())
    assert metrics_settings(Settings(metrics_enable=True)) == (True, ())
    assert metrics_settings(Settings(config_path=config(tmp_path, None))) == (False, ())
    enabled = {"metrics": {"enable": True, "metrics_list": ["ovserve_engine_step_seconds"]}}
    assert metrics_settings(Settings(config_path=config(tmp_path, enabled))) == (True, ("ovserve_engine_step_seconds",))
    # the flag's list wins over the file's
    flags = Settings(config_path=config(tmp_path, enabled), metrics_list=("ovserve_prompt_tokens_total",))
    assert metrics_settings(flags) == (True, ("ovserve_prompt_tokens_total",))
    # the flag enables what the file lists
    listed = {"metrics": {"enable": False, "metrics_list": ["ovserve_engine_step_seconds"]}}
    assert metrics_settings(Settings(config_path=config(tmp_path, listed), metrics_enable=True)) == (True, ("ovserve_engine_step_seconds",))


def test_bad_names_and_keys_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--metrics_list: unknown metric 'nope'; valid: ovserve_"):
        metrics_settings(Settings(metrics_enable=True, metrics_list=("nope",)))
    with pytest.raises(ValueError, match="--metrics_list needs --metrics_enable"):
        metrics_settings(Settings(metrics_list=("ovserve_engine_step_seconds",)))
    with pytest.raises(
        ConfigFileError, match="monitoring.metrics.metrics_list: unknown metric 'ovms_nope'; valid: .*ovms_requests_success"
    ):
        metrics_settings(Settings(config_path=config(tmp_path, {"metrics": {"enable": True, "metrics_list": ["ovms_nope"]}})))
    with pytest.raises(ConfigFileError, match="metrics_list needs monitoring.metrics.enable"):
        metrics_settings(Settings(config_path=config(tmp_path, {"metrics": {"metrics_list": ["ovserve_engine_step_seconds"]}})))
    with pytest.raises(ConfigFileError, match="unknown key 'monitoring.metrics.enabled'"):
        metrics_settings(Settings(config_path=config(tmp_path, {"metrics": {"enabled": True}})))


def samples(metrics: Metrics) -> dict[str, float]:
    text = render(metrics.registry).decode()
    return {
        s.name + "{" + ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())) + "}": s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def app_metrics(names: tuple[str, ...] = ()) -> Metrics:
    app = create_app(Settings(metrics_enable=True, metrics_list=names), ServableManager([]))
    return app[METRICS]


def test_without_metrics_there_is_no_route_and_no_middleware() -> None:
    app = create_app(Settings(), ServableManager([]))
    assert METRICS not in app and metrics_middleware not in app.middlewares
    assert not any(r.canonical == "/metrics" for r in app.router.resources())


def test_the_sink_records_requests_and_steps() -> None:
    metrics = app_metrics()
    record = RequestRecord(arrived=10.0, prompt_tokens=7)
    record.tokens(1, 10.5)
    record.tokens(2, 10.7)
    record.tokens(1, 11.1)
    metrics.request_done("m", record)
    metrics.engine_steps("m", [0.002, 0.003], [0.25])
    got = samples(metrics)
    assert got["ovserve_prompt_tokens_total{model=m}"] == 7
    assert got["ovserve_generated_tokens_total{model=m}"] == 4
    assert got["ovserve_time_to_first_token_seconds_sum{model=m}"] == pytest.approx(0.5)
    assert got["ovserve_time_per_output_token_seconds_sum{model=m}"] == pytest.approx(0.6 / 3)
    assert got["ovserve_engine_step_seconds_count{model=m}"] == 2
    assert got["ovserve_engine_step_seconds_bucket{le=0.0025,model=m}"] == 1
    assert got["ovserve_request_queue_seconds_sum{model=m}"] == pytest.approx(0.25)


def test_a_list_records_only_its_families() -> None:
    metrics = app_metrics(("ovserve_time_to_first_token_seconds",))
    assert metrics.prompt_tokens is None and metrics.step is None and metrics.ttft is not None
    assert metrics.ovms.success is None and metrics.ovms.processing is None
    record = RequestRecord(arrived=1.0, prompt_tokens=3)
    record.tokens(1, 2.0)
    metrics.request_done("m", record)
    metrics.engine_steps("m", [0.1], [0.1])
    ours = {name.split("{")[0] for name in samples(metrics) if not name.startswith("vllm:")}
    assert ours <= {
        "ovserve_time_to_first_token_seconds_bucket",
        "ovserve_time_to_first_token_seconds_count",
        "ovserve_time_to_first_token_seconds_sum",
    }


def test_record_timings() -> None:
    one = RequestRecord(arrived=0.0)
    one.tokens(1, 0.2)
    assert one.time_to_first_token == pytest.approx(0.2) and one.time_per_output_token is None
    at_once = RequestRecord(arrived=0.0)
    at_once.tokens(5, 0.3)  # beam search: every token in one delivery
    assert at_once.time_per_output_token is None
    assert set(BY_NAME) >= {
        "ovserve_http_requests_in_flight",
        "ovserve_engine_requests_waiting",
        "ovserve_engine_requests_running",
        "ovserve_kv_cache_usage_ratio",
    }


def test_ovms_names_are_accepted_and_select_as_ovms_does(tmp_path: Path) -> None:
    listed = {"metrics": {"enable": True, "metrics_list": ["ovms_requests_success", "ovms_infer_req_queue_size"]}}
    assert metrics_settings(Settings(config_path=config(tmp_path, listed))) == (
        True,
        ("ovms_requests_success", "ovms_infer_req_queue_size"),
    )
    everything = app_metrics()  # no list: ovserve's families, OVMS's default set, vLLM's names
    assert everything.ovms.wanted >= set(BY_NAME) | set(OVMS_DEFAULT) | set(VLLM_BY_NAME)
    assert "ovms_infer_req_queue_size" not in everything.ovms.wanted  # optional in OVMS too
    only = app_metrics(("ovms_requests_accepted",))
    only.ovms.http_done("/v3/chat/completions", "m", 200, False, 0.25)
    only.ovms.http_done("/v3/chat/completions", "m", 400, True, 0.25)
    got = samples(only)
    assert got["ovms_requests_accepted_total{api=V3,interface=REST,method=Unary,name=m}"] == 1
    assert got["ovms_requests_accepted_total{api=V3,interface=REST,method=Stream,name=m}"] == 1
    assert not any(name.startswith(("ovserve_", "ovms_responses", "ovms_graph")) for name in got)
    # OVMS writes counters without `_total` (prometheus-client's parser adds it back to sample names)
    text = render(only.registry).decode()
    assert "# TYPE ovms_requests_accepted counter" in text and "ovms_requests_accepted_total" not in text


def test_loop_lag_is_a_histogram_without_quantile() -> None:
    from serving.loop_lag import LoopLagMonitor

    monitor = LoopLagMonitor()
    for lag in (0.0005, 0.001, 0.02, 3.0):
        monitor.record(lag)
    buckets, total = monitor.histogram()
    assert dict(buckets)["0.001"] == 2 and dict(buckets)["0.025"] == 3 and dict(buckets)["+Inf"] == 4
    assert total == pytest.approx(3.0215)
    assert monitor.summary()["samples"] == 4

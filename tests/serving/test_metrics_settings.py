"""Metrics settings (flags and config.json's `monitoring`) and the sink that records them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from calculators.llm.telemetry import RequestRecord
from serving.app import create_app
from serving.config_file import ConfigFileError
from serving.loading import metrics_settings
from serving.metrics import METRICS, Metrics, metrics_middleware
from serving.metrics_catalog import BY_NAME
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
    with pytest.raises(ConfigFileError, match="monitoring.metrics.metrics_list: unknown metric 'ovms_requests_success'"):
        metrics_settings(Settings(config_path=config(tmp_path, {"metrics": {"enable": True, "metrics_list": ["ovms_requests_success"]}})))
    with pytest.raises(ConfigFileError, match="metrics_list needs monitoring.metrics.enable"):
        metrics_settings(Settings(config_path=config(tmp_path, {"metrics": {"metrics_list": ["ovserve_engine_step_seconds"]}})))
    with pytest.raises(ConfigFileError, match="unknown key 'monitoring.metrics.enabled'"):
        metrics_settings(Settings(config_path=config(tmp_path, {"metrics": {"enabled": True}})))


def samples(metrics: Metrics) -> dict[str, float]:
    text = generate_latest(metrics.registry).decode()
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
    assert metrics.per_request and not metrics.per_step
    record = RequestRecord(arrived=1.0, prompt_tokens=3)
    record.tokens(1, 2.0)
    metrics.request_done("m", record)
    metrics.engine_steps("m", [0.1], [0.1])
    assert {name.split("{")[0] for name in samples(metrics)} <= {
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

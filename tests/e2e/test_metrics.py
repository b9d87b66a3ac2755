"""GET /metrics on a real server, parsed with prometheus-client's own parser: the counters match
the traffic sent (and the responses' `usage`), histograms count every request, gauges settle."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.metrics_catalog import BY_NAME, OVMS_BY_NAME, OVMS_DEFAULT, VLLM_BY_NAME
from tests.helpers.http import CHAT, assert_openai_error, get, post, user
from tests.helpers.metrics import Families, scrape, value
from tests.helpers.servables import ovms_servable
from tests.helpers.server import ROOT, Server, start_server
from tests.models import TINY_COMPLETIONS, TINY_PROMPTS

COMPLETIONS = "/v3/completions"
IDLE_POLL_LIMIT_S = 30


def sse_usage(body: bytes) -> dict[str, int]:
    events = [line[6:] for line in body.decode().splitlines() if line.startswith("data: ") and line != "data: [DONE]"]
    usage = [json.loads(e)["usage"] for e in events if json.loads(e).get("usage")]
    assert len(usage) == 1
    return dict(usage[0])


@pytest.fixture(scope="module")
def metrics_server(tiny_model_dir: Path) -> Iterator[Server]:
    srv = start_server("--model_path", str(tiny_model_dir), "--model_name", "tiny", "--metrics_enable")
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


def test_metrics_are_off_by_default(server: Server) -> None:
    status, body = get(server, "/metrics")
    assert_openai_error(status, body, 404)


def idle_engine(server: Server) -> Families:
    """Scrape until the engine reports nothing waiting or running (it says so after its last step)."""
    deadline = time.monotonic() + IDLE_POLL_LIMIT_S
    while True:
        families = scrape(server)
        busy = value(families, "ovserve_engine_requests_waiting", model="tiny") + value(
            families, "ovserve_engine_requests_running", model="tiny"
        )
        if busy == 0 or time.monotonic() > deadline:
            return families


def test_metrics_match_the_traffic(metrics_server: Server) -> None:
    prompt_tokens = generated_tokens = 0
    chat_ok = 0
    for prompt, answer in TINY_PROMPTS.items():
        status, _, body = post(metrics_server, CHAT, {"model": "tiny", "messages": user(prompt)})
        assert status == 200
        reply = json.loads(body)
        assert reply["choices"][0]["message"]["content"] == answer
        prompt_tokens += reply["usage"]["prompt_tokens"]
        generated_tokens += reply["usage"]["completion_tokens"]
        chat_ok += 1
    streamed = {"model": "tiny", "messages": user("Count to five."), "stream": True, "stream_options": {"include_usage": True}}
    for _ in range(2):
        status, _, body = post(metrics_server, CHAT, streamed)
        assert status == 200
        usage = sse_usage(body)
        prompt_tokens += usage["prompt_tokens"]
        generated_tokens += usage["completion_tokens"]
        chat_ok += 1
    prompt, continuation = next(iter(TINY_COMPLETIONS.items()))
    status, _, body = post(metrics_server, COMPLETIONS, {"model": "tiny", "prompt": prompt, "max_tokens": 16})
    assert status == 200 and json.loads(body)["choices"][0]["text"] == continuation
    prompt_tokens += json.loads(body)["usage"]["prompt_tokens"]
    generated_tokens += json.loads(body)["usage"]["completion_tokens"]
    assert post(metrics_server, CHAT, {"model": "tiny", "messages": []})[0] == 400
    assert post(metrics_server, CHAT, {"model": "nope", "messages": user("hi")})[0] == 404
    llm_requests = chat_ok + 1

    families = idle_engine(metrics_server)
    # HTTP requests by endpoint, model and status
    assert value(families, "ovserve_http_requests_total", endpoint=CHAT, model="tiny", status="200") == chat_ok
    assert value(families, "ovserve_http_requests_total", endpoint=COMPLETIONS, model="tiny", status="200") == 1
    assert value(families, "ovserve_http_requests_total", endpoint=CHAT, model="tiny", status="400") == 1
    assert value(families, "ovserve_http_requests_total", endpoint=CHAT, model="", status="404") == 1
    assert value(families, "ovserve_http_requests_in_flight") == 0
    # tokens: exactly what the responses' usage said
    assert value(families, "ovserve_prompt_tokens_total", model="tiny") == prompt_tokens
    assert value(families, "ovserve_generated_tokens_total", model="tiny") == generated_tokens
    # one observation per request
    assert value(families, "ovserve_time_to_first_token_seconds_count", model="tiny") == llm_requests
    assert value(families, "ovserve_time_per_output_token_seconds_count", model="tiny") == llm_requests
    assert value(families, "ovserve_request_queue_seconds_count", model="tiny") == llm_requests
    assert value(families, "ovserve_request_duration_seconds_count", model="tiny", endpoint=CHAT) == chat_ok
    assert value(families, "ovserve_request_duration_seconds_count", model="tiny", endpoint=COMPLETIONS) == 1
    # at least one engine step per generated token of the longest answer; every histogram's
    # +Inf bucket holds all of its observations
    steps = value(families, "ovserve_engine_step_seconds_count", model="tiny")
    assert steps >= max(len(a.split()) for a in TINY_PROMPTS.values())
    assert value(families, "ovserve_engine_step_seconds_bucket", model="tiny", le="+Inf") == steps
    for name in ("ovserve_time_to_first_token_seconds", "ovserve_request_queue_seconds", "ovserve_engine_step_seconds"):
        assert value(families, name + "_sum", model="tiny") >= 0
    # engine events and gauges
    assert value(families, "ovserve_engine_requests_total", model="tiny", event="added") == llm_requests
    assert value(families, "ovserve_engine_requests_total", model="tiny", event="finished") == llm_requests
    assert value(families, "ovserve_engine_requests_total", model="tiny", event="failed") == 0
    assert value(families, "ovserve_engine_requests_waiting", model="tiny") == 0
    assert value(families, "ovserve_engine_requests_running", model="tiny") == 0
    assert 0 <= value(families, "ovserve_kv_cache_usage_ratio", model="tiny") <= 1
    assert value(families, "ovserve_kv_cache_size_bytes", model="tiny") > 0
    assert value(families, "ovserve_servable_state", model="tiny", state="available") == 1
    # the loop lag: a histogram, no `quantile` label anywhere but on summaries
    assert families.types["ovserve_event_loop_lag_seconds"] == "histogram"
    assert value(families, "ovserve_event_loop_lag_seconds_count") > 0
    assert all("quantile" not in ls for name, samples in families.items() for _, ls, _ in samples if families.types[name] != "summary")
    # OVMS's families as OVMS documents them (no `version`: every ovserve servable is a graph)
    ovms_labels = {"api": "V3", "interface": "REST", "name": "tiny"}
    unary = chat_ok - 2 + 1  # the chats not streamed and the completion
    assert value(families, "ovms_requests_accepted_total", method="Unary", **ovms_labels) == unary + 1  # and the 400
    assert value(families, "ovms_requests_accepted_total", method="Stream", **ovms_labels) == 2
    assert value(families, "ovms_responses_total", method="Unary", **ovms_labels) == unary
    assert value(families, "ovms_graph_error_total", method="Unary", **ovms_labels) == 1  # the empty messages
    assert value(families, "ovms_graph_processing_time_us_count", method="Unary", name="tiny") == unary
    assert value(families, "ovms_request_time_us_count", interface="REST", name="tiny") == llm_requests
    assert value(families, "ovms_wait_for_infer_req_time_us_count", name="tiny") == llm_requests
    assert value(families, "ovms_inference_time_us_count", name="tiny") == steps
    assert value(families, "ovms_current_graphs", name="tiny") == 0 and value(families, "ovms_current_requests", name="tiny") == 0
    assert value(families, "ovms_streams", name="tiny") == 1
    # vLLM's names, from the same records
    vllm = {"model_name": "tiny", "engine": "0"}
    assert value(families, "vllm:prompt_tokens_total", **vllm) == prompt_tokens
    assert value(families, "vllm:generation_tokens_total", **vllm) == generated_tokens
    finished = {ls["finished_reason"]: v for name, ls, v in families["vllm:request_success"] if ls["model_name"] == "tiny"}
    assert sum(finished.values()) == llm_requests and set(finished) <= {"stop", "length"}, finished
    for name in ("vllm:time_to_first_token_seconds", "vllm:e2e_request_latency_seconds", "vllm:request_queue_time_seconds"):
        assert value(families, name + "_count", **vllm) == llm_requests
    assert value(families, "vllm:request_prompt_tokens_sum", **vllm) == prompt_tokens
    assert value(families, "vllm:request_generation_tokens_sum", **vllm) == generated_tokens
    assert value(families, "vllm:num_requests_running", **vllm) == 0 and value(families, "vllm:num_requests_waiting", **vllm) == 0
    assert 0 <= value(families, "vllm:kv_cache_usage_perc", **vllm) <= 1
    assert value(families, "vllm:num_preemptions_total", **vllm) == 0
    assert value(families, "vllm:cache_config_info", engine="0", model_name="tiny") == 1
    for name, family in {**OVMS_BY_NAME, **VLLM_BY_NAME}.items():
        served = name.removesuffix("_total")
        if served in families:
            assert families.types[served] == family.kind, name
            assert {k for _, ls, _ in families[served] for k in ls} - {"le"} <= set(family.labels), name
    # every family in the catalog is served, OVMS's default set and vLLM's (LoRA info only with
    # adapters), and nothing else
    expected = {*BY_NAME, *OVMS_DEFAULT, *VLLM_BY_NAME} - {"vllm:lora_requests_info"}
    assert set(families) == {name.removesuffix("_total") for name in expected}


def test_metrics_list_keeps_only_the_named_families(tiny_model_dir: Path, tmp_path: Path) -> None:
    """config.json's `monitoring` enables the metrics; --metrics_list picks the families."""
    ovms_servable(tmp_path / "models" / "chat", tiny_model_dir)
    config = {"model_config_list": [{"config": {"name": "chat", "base_path": "models/chat"}}], "monitoring": {"metrics": {"enable": True}}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    wanted = ["ovserve_generated_tokens_total", "ovserve_time_to_first_token_seconds"]
    srv = start_server("--config_path", str(tmp_path / "config.json"), "--metrics_list", ",".join(wanted))
    try:
        status, _, body = post(srv, CHAT, {"model": "chat", "messages": user("Say this is a test")})
        assert status == 200
        families = scrape(srv)
        vllm = {name.removesuffix("_total") for name in VLLM_BY_NAME} - {"vllm:lora_requests_info"}  # always served
        assert set(families) - vllm == {"ovserve_generated_tokens", "ovserve_time_to_first_token_seconds"}
        assert value(families, "ovserve_generated_tokens_total", model="chat") == json.loads(body)["usage"]["completion_tokens"]
        assert value(families, "ovserve_time_to_first_token_seconds_count", model="chat") == 1
    finally:
        assert srv.stop() == 0, "\n".join(srv.output)


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--metrics_enable", "--metrics_list", "ovserve_time_to_first_token_seconds,ovserve_nope"], "unknown metric 'ovserve_nope'"),
        (["--metrics_list", "ovserve_time_to_first_token_seconds"], "--metrics_list needs --metrics_enable"),
    ],
)
def test_bad_metric_flags_stop_the_server(tiny_model_dir: Path, flags: list[str], needle: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "serving.cli", "--model_path", str(tiny_model_dir), *flags, "--rest_port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
    if "unknown" in needle:
        assert "ovserve_engine_requests_waiting" in lines[0]  # lists the valid names


def test_ovms_metrics_list_in_config_json(tiny_model_dir: Path, tmp_path: Path) -> None:
    """An OVMS config.json's `metrics_list` of OVMS names starts the server and selects them."""
    ovms_servable(tmp_path / "models" / "chat", tiny_model_dir)
    wanted = ["ovms_requests_success", "ovms_requests_accepted", "ovms_responses", "ovms_graph_processing_time_us", "ovms_infer_req_active"]
    config = {
        "model_config_list": [{"config": {"name": "chat", "base_path": "models/chat"}}],
        "monitoring": {"metrics": {"enable": True, "metrics_list": wanted}},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    srv = start_server("--config_path", str(tmp_path / "config.json"))
    try:
        assert post(srv, CHAT, {"model": "chat", "messages": user("Say this is a test")})[0] == 200
        assert get(srv, "/v2/models/chat/ready")[0] == 200
        families = scrape(srv)
        vllm = {name.removesuffix("_total") for name in VLLM_BY_NAME} - {"vllm:lora_requests_info"}
        assert set(families) - vllm == set(wanted)
        labels = {"api": "V3", "interface": "REST", "method": "Unary", "name": "chat"}
        assert value(families, "ovms_requests_accepted_total", **labels) == 1
        assert value(families, "ovms_responses_total", **labels) == 1
        assert value(families, "ovms_requests_success_total", api="KServe", method="ModelReady", name="chat") == 1
        assert value(families, "ovms_graph_processing_time_us_count", method="Unary", name="chat") == 1
        assert value(families, "ovms_infer_req_active", name="chat") in (0, 1)
        assert value(families, "vllm:generation_tokens_total", model_name="chat", engine="0") > 0
    finally:
        assert srv.stop() == 0, "\n".join(srv.output)

"""`ovserve bench`: prompt building, metrics, SSE parsing, and real runs on the tiny model
(against a real server, and in-process on the engine). No timing assertions."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from calculators.llm.engine_bench import EngineBench, EngineSettings
from serving.bench import client
from serving.bench.cli import main
from serving.bench.server_process import process_tree_pss, process_tree_rss
from serving.bench.stats import RequestResult, compare, format_comparison, format_table, percentile, summarize
from serving.bench.workload import arrival_times, build_workload, load_tokenizer, server_token_counter
from tests.helpers.server import Server, start_server

SUMMARY_KEYS = {
    "completed", "failed", "duration_s", "request_throughput", "output_throughput", "total_token_throughput",
    "total_input_tokens", "total_output_tokens", "mean_prompt_tokens", "mean_output_tokens",
    "ttft_ms", "tpot_ms", "itl_ms", "e2el_ms", "errors",
}  # fmt: skip
SMALL = ["--num-prompts", "8", "--max-concurrency", "4", "--input-len", "24", "--output-len", "8", "--warmup", "2", "--no-progress"]


# -- prompts ---------------------------------------------------------------------------------
@pytest.mark.parametrize("chat", [True, False], ids=["chat", "completions"])
@pytest.mark.parametrize("input_len", [24, 100, 300])
def test_prompts_have_exactly_input_len_server_tokens(tiny_model_dir: Path, chat: bool, input_len: int) -> None:
    tokenizer = load_tokenizer(tiny_model_dir)
    workload = build_workload(tokenizer, num_prompts=16, input_len=input_len, output_len=4, chat=chat, seed=3)
    count = server_token_counter(tokenizer, chat)
    for prompt in workload.prompts:
        # what the server's tokenizer calculator will produce for this text, and what we kept
        assert tuple(count(prompt.text)) == prompt.token_ids
        assert len(prompt.token_ids) == input_len
    assert len({p.text for p in workload.prompts}) == 16
    assert workload.arrivals == (0.0,) * 16


def test_same_seed_same_workload(tiny_model_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_model_dir)
    first, second, other = (
        build_workload(tokenizer, num_prompts=4, input_len=40, output_len=4, chat=True, request_rate=5.0, seed=seed) for seed in (1, 1, 2)
    )
    assert first == second
    assert first.prompts != other.prompts


def test_chat_input_len_below_template_is_refused(tiny_model_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_model_dir)
    with pytest.raises(ValueError, match="framing alone"):
        build_workload(tokenizer, num_prompts=1, input_len=2, output_len=4, chat=True)


def test_poisson_arrivals_increase_with_the_right_mean_gap() -> None:
    import random

    times = arrival_times(4000, 20.0, random.Random(0))
    assert all(b >= a for a, b in zip(times, times[1:], strict=False))
    assert times[-1] / len(times) == pytest.approx(1 / 20.0, rel=0.1)


# -- stats -----------------------------------------------------------------------------------
def test_percentile_interpolates_like_numpy() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 5.0
    assert percentile(values, 99) == pytest.approx(4.96)
    assert percentile([1.0, 2.0], 50) == 1.5
    assert math.isnan(percentile([], 50))


def test_request_timings() -> None:
    r = RequestResult(start=10.0, chunk_times=[10.1, 10.15, 10.35], end=10.4, prompt_tokens=7, output_tokens=5)
    assert r.ttft == pytest.approx(0.1)
    assert r.itls == pytest.approx([0.05, 0.2])
    assert r.e2e == pytest.approx(0.4)
    assert r.tpot == pytest.approx((0.4 - 0.1) / 4)
    assert RequestResult(start=1.0, chunk_times=[1.5], end=1.5, output_tokens=1).tpot is None


def test_summarize_known_data() -> None:
    results = [
        RequestResult(start=0.0, chunk_times=[0.1, 0.2, 0.3], end=0.3, prompt_tokens=10, output_tokens=3),
        RequestResult(start=0.0, chunk_times=[0.3, 0.4, 0.6], end=0.6, prompt_tokens=10, output_tokens=3),
        RequestResult(start=0.0, end=0.1, error="HTTP 500: boom"),
    ]
    s = summarize(results, duration_s=2.0)
    assert set(s) == SUMMARY_KEYS
    assert (s["completed"], s["failed"]) == (2, 1)
    assert s["request_throughput"] == 1.0
    assert s["output_throughput"] == 3.0
    assert s["total_token_throughput"] == 13.0
    assert s["mean_prompt_tokens"] == 10.0
    assert s["ttft_ms"]["mean"] == pytest.approx(200.0)
    assert s["ttft_ms"]["p50"] == pytest.approx(200.0)
    assert s["itl_ms"]["p50"] == pytest.approx(100.0)  # gaps 100, 100, 100, 200 ms
    assert s["itl_ms"]["mean"] == pytest.approx(125.0)
    assert s["tpot_ms"]["mean"] == pytest.approx((100.0 + 150.0) / 2)
    assert s["e2el_ms"]["p99"] == pytest.approx(300 + 300 * 0.99)
    assert s["errors"] == [{"error": "HTTP 500: boom", "count": 1}]
    engine = {**s, "output_throughput": 6.0, "ttft_ms": {"p50": 100.0}, "itl_ms": {"p50": 90.0}, "tpot_ms": {"p50": 125.0}}
    ratios = compare(s, engine)
    assert ratios == pytest.approx({"throughput_ratio": 0.5, "ttft_p50_ratio": 2.0, "itl_p50_delta_ms": 10.0, "tpot_p50_ratio": 1.0})
    assert "Output token throughput" in format_table("t", s)
    assert "server/engine" in format_comparison(s, {**s, **engine, "tpot_ms": s["tpot_ms"]}, ratios)


# -- SSE parsing -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("event", "kind"),
    [
        (b'data: {"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}],"usage":null}', client.CONTENT),
        (b'data: {"choices": [{"index": 0, "delta": {"content": "hi"}}]}', client.CONTENT),  # spaced JSON: decoded
        (b'data: {"choices":[{"index":0,"text":"hi","finish_reason":null}]}', client.CONTENT),
        (b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}', client.IGNORE),
        (b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}', client.IGNORE),
        (b'data: {"choices":[{"index":0,"text":"","finish_reason":"length"}]}', client.IGNORE),
        (b'data: {"choices":[{"delta":{"content":"say \\"content\\":\\"x\\""}}]}', client.CONTENT),
        (b"data: [DONE]", client.DONE),
        (b": keep-alive", client.IGNORE),
        (b'event: message\ndata: {"choices":[{"delta":{"content":"x"}}]}', client.CONTENT),
    ],
)
def test_parse_event_kinds(event: bytes, kind: int) -> None:
    parsed = client.parse_event(event)
    assert parsed.kind == kind
    assert parsed.error is None


def test_parse_event_usage_and_error() -> None:
    usage = client.parse_event(b'data: {"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":8,"total_tokens":20}}')
    assert usage.kind == client.IGNORE
    assert usage.usage is not None and (usage.usage.prompt_tokens, usage.usage.completion_tokens) == (12, 8)
    error = client.parse_event(b'data: {"error":{"message":"engine died","type":"server_error"}}')
    assert error.error is not None and "engine died" in error.error


def test_request_body_shapes() -> None:
    chat = json.loads(client.request_body("m", "hello", 8, chat=True))
    assert chat == {
        "model": "m",
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": 8,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0,
    }
    completion = json.loads(client.request_body("m", "hello", 8, chat=False, extra={"top_k": 1}))
    assert completion["prompt"] == "hello" and "messages" not in completion and completion["top_k"] == 1


# -- real runs on the tiny model -------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tiny_model_dir: Path) -> Iterator[Server]:
    srv = start_server("--model_path", str(tiny_model_dir), "--model_name", "tiny")
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


@pytest.mark.parametrize("endpoint", ["/v3/chat/completions", "/v3/completions"])
def test_bench_against_a_real_server(server: Server, tiny_model_dir: Path, tmp_path: Path, endpoint: str) -> None:
    out = tmp_path / "bench.json"
    args = ["--base-url", server.base_url, "--endpoint", endpoint, "--model", "tiny", "--model-dir", str(tiny_model_dir)]
    assert main([*args, *SMALL, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["mode"] == "server"
    assert SUMMARY_KEYS <= set(report)
    assert {"loop_lag", "loop_lag_p99_ms", "config", "target", "requests", "client_cpu_s"} <= set(report)
    assert [r["output_tokens"] for r in report["requests"]] == [8] * 8
    assert (report["completed"], report["failed"]) == (8, 0)
    assert report["total_output_tokens"] == 8 * 8
    assert report["mean_prompt_tokens"] == 24
    assert set(report["ttft_ms"]) == {"mean", "p50", "p99"}


def test_every_request_streams_and_reports_usage(server: Server, tiny_model_dir: Path) -> None:
    workload = build_workload(load_tokenizer(tiny_model_dir), num_prompts=8, input_len=24, output_len=8, chat=True, request_rate=200.0)
    run = asyncio.run(client.run_workload(server.base_url, "/v3/chat/completions", "tiny", workload, 4))
    for result in run.results:
        assert result.error is None
        assert (result.prompt_tokens, result.output_tokens) == (24, 8)
        assert 1 <= len(result.chunk_times) <= 8
        assert result.start <= result.chunk_times[0] <= result.end


def test_bench_reports_failures(server: Server, tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["--base-url", server.base_url, "--model", "no-such-model", "--model-dir", str(tiny_model_dir)]
    assert main([*args, *SMALL, "--warmup", "0", "--json", str(out)]) == 1
    report = json.loads(out.read_text())
    assert (report["completed"], report["failed"]) == (0, 8)
    assert report["errors"][0]["error"].startswith("HTTP 404")


def test_in_process_run(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    assert main(["--in-process", str(tiny_model_dir), *SMALL, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["mode"] == "in_process"
    assert SUMMARY_KEYS <= set(report)
    assert [(r["prompt_tokens"], r["output_tokens"]) for r in report["requests"]] == [(24, 8)] * 8
    assert (report["completed"], report["failed"]) == (8, 0)
    assert report["total_output_tokens"] == 8 * 8
    assert report["mean_prompt_tokens"] == 24


def test_engine_bench_counts_tokens_per_request(tiny_model_dir: Path) -> None:
    workload = build_workload(load_tokenizer(tiny_model_dir), num_prompts=6, input_len=30, output_len=8, chat=False, request_rate=500.0)
    engine = EngineBench(EngineSettings(str(tiny_model_dir)))
    results, duration = engine.run([p.token_ids for p in workload.prompts], workload.arrivals, 8, max_concurrency=2)
    assert duration > 0
    for result in results:
        assert result.error is None
        assert (result.prompt_tokens, result.output_tokens) == (30, 8)
        assert 1 <= len(result.chunk_times) <= 8
        assert result.start <= result.chunk_times[0] <= result.end


async def _peer_like_server(chunks_per_stream: list[int]) -> tuple[object, str]:
    """An HTTP server that streams like the peer: content chunks, no usage chunk; the n-th
    stream carries chunks_per_stream[n] content chunks (0: an empty stream, as the peer sends
    when it is busy)."""
    from aiohttp import web

    counts = iter(chunks_per_stream)

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":null}}]}\n\n')
        for _ in range(next(counts)):
            await response.write(b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n')
        await response.write(b"data: [DONE]\n\n")
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


async def test_tokens_from_requested_for_servers_without_usage(tiny_model_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_model_dir)
    workload = build_workload(tokenizer, num_prompts=3, output_len=7, input_len=24, chat=True, seed=0)
    runner, base_url = await _peer_like_server([5, 0, 3])
    try:
        by_usage = await client.run_workload(base_url, "/v1/chat/completions", "m", workload, 1, measure_loop_lag=False)
        runner2, base_url2 = await _peer_like_server([5, 0, 3])
        try:
            requested = await client.run_workload(
                base_url2, "/v1/chat/completions", "m", workload, 1, measure_loop_lag=False, tokens_from_usage=False
            )
        finally:
            await runner2.cleanup()  # type: ignore[attr-defined]
    finally:
        await runner.cleanup()  # type: ignore[attr-defined]
    assert all(r.error and "usage" in r.error for r in by_usage.results)
    assert [r.output_tokens for r in requested.results if r.error is None] == [7, 7]
    assert [r.error for r in requested.results][1] == "the stream carried no content"


async def test_no_keepalive_opens_a_connection_per_request() -> None:
    """keepalive=False (`--no-keepalive`, for llama-server): each request on a new connection."""
    from aiohttp import web

    from serving.bench.workload import BenchPrompt, Workload

    peers: list[object] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n')
        await response.write(b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\ndata: [DONE]\n\n')
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    workload = Workload((BenchPrompt("hi", (1, 2, 3)),) * 4, (0.0,) * 4, 1, True)
    try:
        kept = await client.run_workload(base_url, "/v1/chat/completions", "m", workload, 1, measure_loop_lag=False)
        kept_peers, peers[:] = set(peers), []
        fresh = await client.run_workload(base_url, "/v1/chat/completions", "m", workload, 1, measure_loop_lag=False, keepalive=False)
    finally:
        await runner.cleanup()
    assert all(r.error is None for r in kept.results + fresh.results)
    assert len(kept_peers) == 1 and len(set(peers)) == 4


def test_bench_with_the_tiny_prompts(server: Server, tiny_model_dir: Path, tmp_path: Path) -> None:
    """--prompts tiny: the trained prompts in turn, each answered to its end (no ignore_eos)."""
    from tests.models import TINY_PROMPTS

    out = tmp_path / "bench.json"
    args = ["--base-url", server.base_url, "--model", "tiny", "--model-dir", str(tiny_model_dir), "--prompts", "tiny"]
    assert main([*args, "--num-prompts", str(len(TINY_PROMPTS)), "--output-len", "200", "--no-progress", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["config"]["prompts"] == "tiny"
    tokenizer = load_tokenizer(tiny_model_dir)
    expected = sorted(len(tokenizer.encode(answer, add_special_tokens=False)) + 1 for answer in TINY_PROMPTS.values())  # + EOS
    assert sorted(r["output_tokens"] for r in report["requests"]) == expected


def test_draft_flags_become_node_options(tmp_path: Path) -> None:
    from serving.cli import build_parser, settings_from_args

    flags = ["--model_path", "m", "--draft_models_path", str(tmp_path), "--draft_device", "CPU", "--draft_max_num_seqs", "4"]
    options = settings_from_args(build_parser().parse_args([*flags, "--draft_dynamic_split_fuse", "false", "--max_ngram_size", "2"]))
    assert {k: v for k, v in options.llm.node_options().items() if "draft" in k or "ngram" in k} == {
        "draft_models_path": str(tmp_path.resolve()),
        "draft_device": "CPU",
        "draft_max_num_seqs": 4,
        "draft_dynamic_split_fuse": False,
        "max_ngram_size": 2,
    }


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").is_file(), reason="needs Linux /proc smaps_rollup")
def test_process_tree_memory_counts_children_and_shared_pages_once() -> None:
    # A child that touches 64 MiB of its own memory and shares this interpreter's libraries.
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; b = bytearray(64 * 2**20); sys.stdout.write('ok\\n'); sys.stdout.flush(); sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None
    with child, child.stdin, child.stdout:  # closing stdin ends the child, then it is waited for
        assert child.stdout.readline() == b"ok\n"
        rss, pss = process_tree_rss(os.getpid()), process_tree_pss(os.getpid())
        assert rss is not None and pss is not None
        assert rss["children"] >= 64 * 2**20 and pss["children"] >= 60 * 2**20
        # Shared pages (the Python binary, libc) count in full in each RSS, in proportion in PSS.
        assert 0 < pss["main"] + pss["children"] < rss["main"] + rss["children"]

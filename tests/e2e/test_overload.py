"""A flood: 2,000 concurrent requests against a server with a small batch and small admission
limits. Every request either gets its exact answer or a 429/503 with `Retry-After` in OpenAI's
error shape; never a 5xx, never a broken connection; health checks are answered all along; the
server process tree's peak RSS is reported (and held to a generous bound only).

How many requests get a 429 depends on timing and is not asserted.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from serving.bench.server_process import process_tree_rss
from tests.helpers.http import CHAT, RawStream, assert_openai_error, post, user
from tests.helpers.processes import serving_log, stopping_server
from tests.helpers.server import Server, start_server
from tests.helpers.stats import worker_stats
from tests.models import TINY_PROMPTS

REQUESTS = 2000
MAX_TOKENS = 32  # above every short answer's length: they end on their own
PROMPTS = sorted(p for p, answer in TINY_PROMPTS.items() if len(answer) < 60)  # not the long story
RSS_BOUND_BYTES = 6 * 2**30  # generous: catches a runaway, not a regression of a few MB
BOUND_S = 120  # guards against a hang only
LONG_STREAM = {"model": "tiny", "messages": user("Tell me a story."), "stream": True, "max_tokens": 450, "ignore_eos": True}
LONG_PLAIN = {**LONG_STREAM, "stream": False}


@pytest.fixture(scope="module")
def flood_server(tiny_model_dir: Path) -> Iterator[Server]:
    srv = start_server(
        "--model_path",
        str(tiny_model_dir),
        "--model_name",
        "tiny",
        "--max_num_seqs",
        "32",
        "--max_concurrent_requests",
        "64",
        "--max_queued_requests",
        "128",
        "--metrics_enable",
    )
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output[-50:])
    problems = [line for line in serving_log(srv) if "Traceback" in line or " ERROR " in line]
    assert not problems, "\n".join(srv.output[-80:])


class RssSampler:
    """Samples the server's process tree RSS (server + engine worker) from a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self.idle = self._sample()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        rss = process_tree_rss(self.pid)
        return 0 if rss is None else rss["main"] + rss["children"]

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._sample())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())


def stream_text(body: bytes) -> str:
    events = [line[6:] for line in body.decode().split("\n") if line.startswith("data: ")]
    assert events and events[-1] == "[DONE]", body[-300:]
    chunks = [json.loads(e) for e in events[:-1]]
    assert not any("error" in c for c in chunks), body[-300:]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


async def one_request(session: aiohttp.ClientSession, url: str, i: int) -> tuple[str, int | str]:
    """(what happened, status or error) for request i; asserts on the body of every answer."""
    prompt = PROMPTS[i % len(PROMPTS)]
    stream = i % 2 == 0
    body = {"model": "tiny", "messages": [{"role": "user", "content": prompt}], "max_tokens": MAX_TOKENS, "stream": stream}
    try:
        async with session.post(url, json=body) as response:
            raw = await response.read()
            status = response.status
            retry_after = response.headers.get("Retry-After")
    except (aiohttp.ClientError, OSError) as exc:
        return "connection error", f"{type(exc).__name__}: {exc}"
    if status == 200:
        text = stream_text(raw) if stream else json.loads(raw)["choices"][0]["message"]["content"]
        assert text == TINY_PROMPTS[prompt], (prompt, text)
        return "ok", status
    error = json.loads(raw)
    assert set(error) == {"error"} and {"message", "type", "param", "code"} <= set(error["error"]), raw
    assert status in (429, 503) and retry_after is not None and int(retry_after) >= 1, (status, raw)
    return "refused", status


async def flood(server: Server) -> tuple[Counter[tuple[str, int | str]], list[int], float]:
    url = f"{server.base_url}/v3/chat/completions"
    health: list[int] = []
    done = asyncio.Event()

    async def poll_health() -> None:
        # its own connection pool: the flood's connections never hold a health check back
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=BOUND_S)) as session:
            while not done.is_set():
                for path in ("/v2/health/live", "/v2/health/ready"):
                    async with session.get(server.base_url + path) as response:
                        health.append(response.status)
                await asyncio.sleep(0.05)

    connector = aiohttp.TCPConnector(limit=0)  # every request on its own connection, at once
    timeout = aiohttp.ClientTimeout(total=BOUND_S)
    poller = asyncio.ensure_future(poll_health())
    started = time.monotonic()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        results = await asyncio.gather(*(one_request(session, url, i) for i in range(REQUESTS)))
    elapsed = time.monotonic() - started
    done.set()
    await poller
    return Counter(results), health, elapsed


async def scrape(server: Server) -> dict[str, float]:
    async with aiohttp.ClientSession() as session, session.get(server.base_url + "/metrics") as response:
        text = await response.text()
    values = {}
    for line in text.splitlines():
        if line.startswith("ovserve_admission") or line.startswith("ovserve_requests_rejected"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_flood_is_answered_or_refused_cleanly(flood_server: Server) -> None:
    with RssSampler(flood_server.process.pid) as rss:
        outcomes, health, elapsed = asyncio.run(flood(flood_server))
    by_status = Counter(status for (_, status), count in outcomes.items() for _ in range(count))
    print(
        f"\n{REQUESTS} requests in {elapsed:.1f} s: {dict(by_status)}; health checks: {len(health)}; "
        f"RSS of server + worker: idle {rss.idle / 2**20:.0f} MiB, peak {rss.peak / 2**20:.0f} MiB"
    )
    assert sum(outcomes.values()) == REQUESTS
    errors = {what: n for what, n in outcomes.items() if what[0] == "connection error"}
    assert not errors, errors
    assert set(by_status) <= {200, 429, 503}, by_status
    assert by_status[200] > 0
    assert health and all(status == 200 for status in health), Counter(health)
    assert rss.peak < RSS_BOUND_BYTES
    metrics = asyncio.run(scrape(flood_server))
    assert metrics["ovserve_admission_requests_running"] == 0 and metrics["ovserve_admission_queue_length"] == 0, metrics
    assert metrics['ovserve_requests_rejected_total{reason="queue_full"}'] == by_status[429], metrics


# -- the limits one by one, deterministic: the engine worker is paused (SIGSTOP) ----------------


def _metrics(server: Server) -> dict[str, float]:
    return asyncio.run(scrape(server))


def _poll(what: str, condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + BOUND_S
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


def _post_in_thread(server: Server, body: dict[str, Any], into: list[tuple[int, dict[str, str], bytes]]) -> threading.Thread:
    thread = threading.Thread(target=lambda: into.append(post(server, CHAT, body)), daemon=True)
    thread.start()
    return thread


def test_request_timeout_cancels_running_and_waiting_requests(tiny_model_dir: Path) -> None:
    """Past --request_timeout: a started stream gets an error event then [DONE]; a request not
    answered yet, running or waiting, a 504. The worker is paused, so none can finish; the
    limit only has to exceed the time to the first token of a loaded machine."""
    timeout_s = 5
    limits = ("--request_timeout", str(timeout_s), "--max_concurrent_requests", "1", "--metrics_enable")
    with stopping_server(tiny_model_dir, *limits) as (server, worker):
        # HTTP/1.1: chunked, so the graph writes the chunks itself (serving.sse_sink) until then.
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=BOUND_S)
        conn.request("POST", CHAT, body=json.dumps(LONG_STREAM), headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        first = response.read1()
        os.kill(worker, signal.SIGSTOP)  # the stream cannot finish now
        rest = response.read()
        conn.close()
        assert response.status == 200, first
        events = [line[6:] for line in (first + rest).decode().split("\n") if line.startswith("data: ")]
        assert events[-1] == "[DONE]" and json.loads(events[-2])["error"]["type"] == "timeout_error", events[-3:]
        # Two more: one runs, one waits for the slot (or, should the first time out before the
        # second arrives, runs after it): either way a 504 in OpenAI's shape.
        answers: list[tuple[int, dict[str, str], bytes]] = []
        threads = [_post_in_thread(server, LONG_PLAIN, answers) for _ in range(2)]
        for thread in threads:
            thread.join(BOUND_S)
        assert len(answers) == 2
        for status, _, body in answers:
            assert_openai_error(status, body, 504)
            assert json.loads(body)["error"]["type"] == "timeout_error"
        os.kill(worker, signal.SIGCONT)
        # The engine dropped them all; the server answers again.
        _poll("the engine is idle", lambda: _engine_idle(server))
        metrics = _metrics(server)
        assert metrics['ovserve_requests_rejected_total{reason="timeout"}'] == 3, metrics
        assert metrics["ovserve_admission_requests_running"] == 0 and metrics["ovserve_admission_queue_length"] == 0, metrics
        status, _, reply = post(server, CHAT, {"model": "tiny", "messages": user("Say this is a test")})
        assert status == 200 and json.loads(reply)["choices"][0]["message"]["content"] == TINY_PROMPTS["Say this is a test"]


def _engine_idle(server: Server) -> bool:
    stats = worker_stats(server)
    return stats["running"] == 0 and stats["active_requests"] == 0


def test_sigterm_refuses_waiting_requests_at_once(tiny_model_dir: Path) -> None:
    """On SIGTERM the requests waiting for a slot get a 503 at once (retry elsewhere) while the
    running one gets the drain's time and finishes."""
    limits = ("--max_concurrent_requests", "1", "--shutdown_timeout", str(BOUND_S), "--metrics_enable")
    with stopping_server(tiny_model_dir, *limits) as (server, worker):
        stream = RawStream(server, LONG_STREAM)
        stream.read_until(b"data: ")
        os.kill(worker, signal.SIGSTOP)  # hold it in flight
        answers: list[tuple[int, dict[str, str], bytes]] = []
        waiting = [_post_in_thread(server, LONG_PLAIN, answers) for _ in range(3)]
        _poll("three waiting", lambda: _metrics(server)["ovserve_admission_queue_length"] == 3)
        server.process.send_signal(signal.SIGTERM)
        for thread in waiting:
            thread.join(BOUND_S)  # the worker is still paused: only the refusal can answer them
        assert len(answers) == 3
        for status, headers, body in answers:
            assert_openai_error(status, body, 503)
            assert headers.get("Retry-After")
        os.kill(worker, signal.SIGCONT)
        stream.read_to_end()
        assert stream.received.rstrip().endswith(b"data: [DONE]") and all("error" not in e for e in stream.events())
        assert server.process.wait(timeout=BOUND_S) == 0


def test_a_huge_prompt_is_refused_before_it_is_encoded(flood_server: Server) -> None:
    """15 MB of prompt (under the 16 MiB body limit): a 400 at once, without encoding it (which
    would hold the GIL for seconds: health checks and every stream would stall meanwhile)."""
    for path, body in (
        (CHAT, {"model": "tiny", "messages": user("word " * 3_000_000)}),
        ("/v3/completions", {"model": "tiny", "prompt": "word " * 3_000_000}),
    ):
        status, _, reply = post(flood_server, path, body)
        assert_openai_error(status, reply, 400)
        error = json.loads(reply)["error"]
        assert error["code"] == "context_length_exceeded" and "at least" in error["message"], error
    status, _, reply = post(flood_server, "/v3/completions", {"model": "tiny", "prompt": [1] * 1_000_000})
    assert_openai_error(status, reply, 400)
    assert json.loads(reply)["error"]["code"] == "context_length_exceeded"


def test_requests_are_refused_when_full(tiny_model_dir: Path) -> None:
    """With the one slot held and no queue: OpenAI routes and KServe REST answer a 429 with
    Retry-After, each in its error shape; gRPC RESOURCE_EXHAUSTED."""
    import numpy as np
    import tritonclient.grpc as tgrpc
    from tritonclient.utils import InferenceServerException

    limits = ("--max_concurrent_requests", "1", "--max_queued_requests", "0", "--port", "0")
    with stopping_server(tiny_model_dir, *limits) as (server, worker):
        stream = RawStream(server, LONG_STREAM)
        stream.read_until(b"data: ")
        os.kill(worker, signal.SIGSTOP)  # the one slot stays taken
        status, headers, body = post(server, CHAT, LONG_PLAIN)  # OpenAI: 429, its error shape
        assert_openai_error(status, body, 429)
        assert headers.get("Retry-After") == "1" and json.loads(body)["error"]["type"] == "rate_limit_error"
        infer = {"inputs": [{"name": "text_input", "shape": [1], "datatype": "BYTES", "data": ["Say this is a test"]}]}
        status, headers, body = post(server, "/v2/models/tiny/infer", infer)
        assert status == 429 and headers.get("Retry-After") == "1", body
        assert set(json.loads(body)) == {"error"} and "at capacity" in json.loads(body)["error"]
        client = tgrpc.InferenceServerClient(server.grpc_address)
        try:
            tensor = tgrpc.InferInput("text_input", [1], "BYTES")
            tensor.set_data_from_numpy(np.array([b"Say this is a test"], dtype=object))
            with pytest.raises(InferenceServerException) as refused:
                client.infer("tiny", [tensor])
            assert refused.value.status() == "StatusCode.RESOURCE_EXHAUSTED", refused.value
            os.kill(worker, signal.SIGCONT)
            stream.read_to_end()
            assert stream.received.rstrip().endswith(b"data: [DONE]")
            result = client.infer("tiny", [tensor])  # the slot is free again
            assert result.as_numpy("text_output")[0].decode() == TINY_PROMPTS["Say this is a test"]
        finally:
            client.close()

"""A flood: 2,000 concurrent requests against a server with a small batch and small admission
limits. Every request either gets its exact answer or a 429/503 with `Retry-After` in OpenAI's
error shape; never a 5xx, never a broken connection; health checks are answered all along; the
server process tree's peak RSS is reported (and held to a generous bound only).

How many requests get a 429 depends on timing and is not asserted.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from serving.bench.server_process import process_tree_rss
from serving.model_builder import TINY_PROMPTS
from tests.e2e.server import Server, start_server

REQUESTS = 2000
MAX_TOKENS = 32  # above every short answer's length: they end on their own
PROMPTS = sorted(p for p, answer in TINY_PROMPTS.items() if len(answer) < 60)  # not the long story
RSS_BOUND_BYTES = 6 * 2**30  # generous: catches a runaway, not a regression of a few MB
BOUND_S = 120  # guards against a hang only


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
    problems = [line for line in srv.output if "Traceback" in line or " ERROR " in line]
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

"""`ovserve soak`: mixed traffic against a real server for a while; fails on what must not happen.

    ovserve soak                                  # builds the demo model, starts a server, 600 s
    ovserve soak --seconds 60 --json soak.json
    ovserve soak --base-url http://127.0.0.1:8000  # an already running server (the tiny model)

A bounded number of clients (asyncio, aiohttp) send, each one request at a time: chat and
completions, unary and streaming, on the demo model's known prompts (exact answers checked);
clients that disconnect before the first token and in mid-stream; bad input (invalid JSON, wrong
types, an unknown model, a prompt longer than the context); tokenize; the models list; health
checks; KServe v2 REST infer; /metrics when the server serves it. Meanwhile the resident memory
(RSS) of the server's process tree (the server and its engine workers) is sampled every second.

The run FAILS (exit code 1) on: any 5xx; a wrong answer to a known prompt; an unexpected status
or an error event in a stream; a request not done within --stuck-seconds; RSS growth beyond
--rss-growth from just after warm-up to the end (medians of a window each, so allocator noise
does not count); requests still live in an engine once the traffic has stopped; an engine worker
restart; a traceback in the log of a server started here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

from serving.bench.server_process import process_tree_rss
from serving.model_builder import TINY_COMPLETIONS, TINY_PROMPTS

STORY = "Tell me a story."
SHORT_PROMPTS = [p for p in TINY_PROMPTS if p != STORY]
# How often each kind of request is picked (relative weights).
WEIGHTS: dict[str, int] = {
    "chat": 12,
    "chat_stream": 12,
    "completion": 6,
    "completion_stream": 6,
    "kserve_infer": 5,
    "disconnect_early": 4,
    "disconnect_mid_stream": 4,
    "bad_json": 2,
    "bad_type": 2,
    "unknown_model": 2,
    "too_long": 2,
    "tokenize": 4,
    "models": 2,
    "health": 3,
    "metrics": 1,
}
GENERATION = {"chat", "chat_stream", "completion", "completion_stream", "kserve_infer", "disconnect_mid_stream"}
CLIENT_CLOSED = "client_closed"  # the status recorded for a request this client abandoned


@dataclass
class Outcome:
    status: int | str  # HTTP status, or CLIENT_CLOSED
    problem: str | None = None  # why this answer is wrong (None: as expected)
    category: str = "unexpected"  # the failure's kind when there is a problem


def pid_listening_on(port: int) -> int | None:
    """The process (of this user) that listens on TCP `port`, from /proc; None if not found."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(entry.name)
        except OSError:
            continue
    return None


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class RSSVerdict:
    peak: int | None = None
    after_warmup: int | None = None
    at_end: int | None = None
    growth: float | None = None
    warmup_s: float = 0.0
    window_s: float = 0.0
    samples: int = 0


def rss_verdict(samples: list[tuple[float, int]], seconds: float) -> RSSVerdict:
    """Warm-up: the first half of the run. The median of the window just after it is compared
    with the median of the last window (10% of the run, 5 to 30 s), so one-off allocator noise
    does not count.

    Why half: the engine worker's native memory grows while the engine meets batch shapes it has
    not seen (OpenVINO's CPU plugin keeps per-shape caches, e.g. CPU_RUNTIME_CACHE_CAPACITY
    entries); new shape combinations get rarer, so the growth slows and stops. Measured on the
    demo model: Python memory in the worker flat (tracemalloc), every per-request container at
    the live-request count, glibc in-use memory growing and held (not fragmentation), a
    fixed-shape genai loop flat for 60k requests. A leak keeps growing after half the run."""
    warmup = 0.5 * seconds
    window = max(5.0, min(30.0, 0.1 * seconds))
    verdict = RSSVerdict(warmup_s=warmup, window_s=window, samples=len(samples))
    if not samples:
        return verdict
    verdict.peak = max(rss for _, rss in samples)
    end = samples[-1][0]
    first = [rss for t, rss in samples if warmup <= t < warmup + window]
    last = [rss for t, rss in samples if t >= end - window]
    if first and last and end - window >= warmup:
        verdict.after_warmup = int(statistics.median(first))
        verdict.at_end = int(statistics.median(last))
        verdict.growth = verdict.at_end / verdict.after_warmup - 1
    return verdict


@dataclass
class Report:
    base_url: str
    seconds: float
    clients: int
    sent: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    by_kind: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)  # the first few failures, in words
    rss: RSSVerdict = field(default_factory=RSSVerdict)
    rss_max_growth: float = 0.10
    live_after_s: float | None = None  # how long the engines took to show no live request
    live_left: dict[str, Any] = field(default_factory=dict)
    restarts: int = 0
    server_log: dict[str, int] = field(default_factory=dict)
    timeline: list[tuple[int, int, int]] = field(default_factory=list)  # (s, server RSS, children's RSS)

    def fail(self, category: str, message: str) -> None:
        self.failures[category] += 1
        if len(self.examples) < 20:
            self.examples.append(f"{category}: {message}")

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict[str, Any]:
        every = [x for values in self.latencies.values() for x in values]
        rss = self.rss
        return {
            "passed": self.passed,
            "base_url": self.base_url,
            "seconds": self.seconds,
            "clients": self.clients,
            "requests_sent": sum(self.sent.values()),
            "sent": dict(sorted(self.sent.items())),
            "responses": dict(sorted(self.statuses.items())),
            "responses_by_kind": {k: dict(sorted(v.items())) for k, v in sorted(self.by_kind.items())},
            "latency_s": {
                "all": {"p50": percentile(every, 0.5), "p99": percentile(every, 0.99)},
                **{k: {"p50": percentile(v, 0.5), "p99": percentile(v, 0.99)} for k, v in sorted(self.latencies.items())},
            },
            "failures": dict(self.failures),
            "failure_examples": self.examples,
            "rss": {
                "peak_bytes": rss.peak,
                "after_warmup_bytes": rss.after_warmup,
                "at_end_bytes": rss.at_end,
                "growth": rss.growth,
                "max_growth": self.rss_max_growth,
                "warmup_s": rss.warmup_s,
                "window_s": rss.window_s,
                "samples": rss.samples,
                "timeline_s_server_children": self.timeline,
            },
            "engine": {"live_requests_cleared_after_s": self.live_after_s, "live_left": self.live_left, "restarts": self.restarts},
            "server_log": self.server_log,
        }

    def format(self) -> str:
        data = self.as_dict()
        mib = 2**20
        lines = [f"ovserve soak: {self.seconds:.0f} s against {self.base_url}, {self.clients} clients"]
        lines.append(f"requests sent: {data['requests_sent']}")
        for kind, count in data["sent"].items():
            lat = data["latency_s"].get(kind, {})
            codes = ", ".join(f"{c}: {n}" for c, n in data["responses_by_kind"].get(kind, {}).items())
            lines.append(f"  {kind:<22} {count:>7}   p50 {_ms(lat.get('p50'))}  p99 {_ms(lat.get('p99'))}   [{codes}]")
        lines.append("responses: " + ", ".join(f"{code}: {n}" for code, n in data["responses"].items()))
        overall = data["latency_s"]["all"]
        lines.append(f"latency (all requests): p50 {_ms(overall['p50'])}, p99 {_ms(overall['p99'])}")
        rss = self.rss
        if rss.peak is not None:
            growth = "n/a (run too short)" if rss.growth is None else f"{rss.growth:+.1%}"
            after = "n/a" if rss.after_warmup is None else f"{rss.after_warmup / mib:.0f} MiB"
            end = "n/a" if rss.at_end is None else f"{rss.at_end / mib:.0f} MiB"
            lines.append(
                f"RSS of the server tree: peak {rss.peak / mib:.0f} MiB; after warm-up ({rss.warmup_s:.0f} s) {after}, "
                f"at the end {end} (medians of {rss.window_s:.0f} s); growth {growth} (limit {self.rss_max_growth:+.0%})"
            )
        else:
            lines.append("RSS: not measured (server process not found; pass --server-pid)")
        live = "never cleared" if self.live_after_s is None else f"0 after {self.live_after_s:.1f} s"
        lines.append(f"engine: live requests once traffic stopped: {live}; worker restarts: {self.restarts}")
        if self.server_log:
            lines.append("server log: " + ", ".join(f"{k}: {v}" for k, v in self.server_log.items()))
        if self.failures:
            lines.append("FAILED: " + ", ".join(f"{k}: {v}" for k, v in self.failures.items()))
            lines.extend(f"  - {example}" for example in self.examples)
        else:
            lines.append("PASSED")
        return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "   n/a" if value is None else f"{value * 1000:6.0f} ms"


def _error_shape(data: bytes) -> str | None:
    """None when `data` is an OpenAI-style error body, else what is wrong with it."""
    try:
        error = json.loads(data)["error"]
        if isinstance(error, dict) and error.get("message"):
            return None
    except (ValueError, KeyError, TypeError):
        pass
    return f"not an OpenAI error body: {data[:200]!r}"


class Traffic:
    def __init__(self, base_url: str, model: str, check_answers: bool, report: Report) -> None:
        self.base = URL(base_url.rstrip("/"))
        self.model = model
        self.check = check_answers
        self.report = report
        self.tokens: dict[str, list[int]] = {}  # tokenize: the first answer per prompt
        self.kinds: dict[str, Callable[[aiohttp.ClientSession], Awaitable[Outcome]]] = {
            "chat": lambda s: self.chat(s, stream=False),
            "chat_stream": lambda s: self.chat(s, stream=True),
            "completion": lambda s: self.completion(s, stream=False),
            "completion_stream": lambda s: self.completion(s, stream=True),
            "kserve_infer": self.kserve_infer,
            "disconnect_early": self.disconnect_early,
            "disconnect_mid_stream": self.disconnect_mid_stream,
            "bad_json": lambda s: self.bad(s, "/v3/chat/completions", b'{"model": "x", "messages": [', 400),
            "bad_type": lambda s: self.bad(s, "/v3/chat/completions", {"model": self.model, "messages": 5}, 400),
            "unknown_model": lambda s: self.bad(s, "/v3/chat/completions", {"model": "no-such-model", "messages": _user("hi")}, 404),
            "too_long": lambda s: self.bad(s, "/v3/completions", {"model": self.model, "prompt": "word " * 2000}, 400),
            "tokenize": self.tokenize,
            "models": self.models,
            "health": self.health,
            "metrics": self.metrics,
        }

    def url(self, path: str) -> URL:
        return self.base.with_path(path)

    def expect(self, got: str, want: str, what: str) -> Outcome:
        if self.check and got != want:
            return Outcome(200, f"{what}: got {got!r}, expected {want!r}", "wrong_answer")
        return Outcome(200)

    async def _unary(self, session: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> tuple[Outcome | None, Any]:
        async with session.post(self.url(path), json=body) as response:
            data = await response.read()
            if response.status != 200:
                return Outcome(response.status, f"{path}: HTTP {response.status}: {data[:300]!r}"), None
            return None, json.loads(data)

    async def _stream(
        self, session: aiohttp.ClientSession, path: str, body: dict[str, Any], pick: Callable[[Any], str]
    ) -> tuple[Outcome | None, str]:
        text: list[str] = []
        async with session.post(self.url(path), json={**body, "stream": True}) as response:
            if response.status != 200:
                data = await response.read()
                return Outcome(response.status, f"{path} stream: HTTP {response.status}: {data[:300]!r}"), ""
            done = False
            async for raw in response.content:
                line = raw.strip()
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    done = True
                    continue
                if done:
                    return Outcome(200, f"{path} stream: an event after [DONE]"), ""
                event = json.loads(payload)
                if "error" in event:
                    return Outcome(200, f"{path} stream: error event {event['error']}"), ""
                text.extend(pick(c) for c in event.get("choices", ()))
            if not done:
                return Outcome(200, f"{path} stream: ended without [DONE]"), ""
        return None, "".join(text)

    async def chat(self, session: aiohttp.ClientSession, stream: bool) -> Outcome:
        prompt = STORY if random.random() < 0.1 else random.choice(SHORT_PROMPTS)
        body = {"model": self.model, "messages": _user(prompt)}
        if stream:
            failed, text = await self._stream(session, "/v3/chat/completions", body, lambda c: c["delta"].get("content") or "")
        else:
            failed, reply = await self._unary(session, "/v3/chat/completions", body)
            text = "" if failed else reply["choices"][0]["message"]["content"]
        return failed or self.expect(text, TINY_PROMPTS[prompt], f"chat {prompt!r}")

    async def completion(self, session: aiohttp.ClientSession, stream: bool) -> Outcome:
        prompt = random.choice(list(TINY_COMPLETIONS))
        body = {"model": self.model, "prompt": prompt, "max_tokens": 32}
        if stream:
            failed, text = await self._stream(session, "/v3/completions", body, lambda c: c.get("text") or "")
        else:
            failed, reply = await self._unary(session, "/v3/completions", body)
            text = "" if failed else reply["choices"][0]["text"]
        return failed or self.expect(text, TINY_COMPLETIONS[prompt], f"completion {prompt!r}")

    async def kserve_infer(self, session: aiohttp.ClientSession) -> Outcome:
        prompt = random.choice(SHORT_PROMPTS)
        body = {"inputs": [{"name": "text_input", "datatype": "BYTES", "shape": [1], "data": [prompt]}]}
        failed, reply = await self._unary(session, f"/v2/models/{self.model}/infer", body)
        return failed or self.expect(reply["outputs"][0]["data"][0], TINY_PROMPTS[prompt], f"KServe infer {prompt!r}")

    async def disconnect_early(self, session: aiohttp.ClientSession) -> Outcome:
        """Send a long streaming request and close the connection before any answer (0-20 ms)."""
        body = json.dumps({"model": self.model, "messages": _user(STORY), "stream": True, "max_tokens": 300}).encode()
        host, port = self.base.host or "127.0.0.1", self.base.port or 80
        ssl = True if self.base.scheme == "https" else None
        reader, writer = await asyncio.open_connection(host, port, ssl=ssl)
        try:
            writer.write(
                f"POST /v3/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            await asyncio.sleep(random.choice((0, 0, 0.001, 0.005, 0.02)))
        finally:
            writer.close()
        return Outcome(CLIENT_CLOSED)

    async def disconnect_mid_stream(self, session: aiohttp.ClientSession) -> Outcome:
        """Read a long stream up to a random number of events, then drop the connection."""
        body = {"model": self.model, "messages": _user(STORY), "stream": True, "max_tokens": 300}
        keep = random.randint(1, 40)
        async with session.post(self.url("/v3/chat/completions"), json=body) as response:
            if response.status != 200:
                data = await response.read()
                return Outcome(response.status, f"mid-stream disconnect: HTTP {response.status}: {data[:300]!r}")
            seen = 0
            async for raw in response.content:
                if raw.startswith(b"data:"):
                    if b'"error"' in raw:
                        return Outcome(200, f"mid-stream disconnect: error event {raw[:300]!r}")
                    seen += 1
                    if seen >= keep:
                        break
            response.close()  # drop the connection: the server must cancel the generation
        return Outcome(CLIENT_CLOSED)

    async def bad(self, session: aiohttp.ClientSession, path: str, body: bytes | dict[str, Any], expected: int) -> Outcome:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        async with session.post(self.url(path), data=data, headers={"Content-Type": "application/json"}) as response:
            reply = await response.read()
            if response.status != expected:
                return Outcome(response.status, f"{path}: HTTP {response.status} (expected {expected}): {reply[:300]!r}")
            return Outcome(response.status, _error_shape(reply))

    async def tokenize(self, session: aiohttp.ClientSession) -> Outcome:
        prompt = random.choice(SHORT_PROMPTS)
        failed, reply = await self._unary(session, "/v3/tokenize", {"model": self.model, "prompt": prompt})
        if failed:
            return failed
        tokens = reply["tokens"]
        first = self.tokens.setdefault(prompt, tokens)
        if tokens != first or reply["count"] != len(tokens) or not tokens:
            return Outcome(200, f"tokenize {prompt!r}: {reply} (before: {first})", "wrong_answer")
        return Outcome(200)

    async def models(self, session: aiohttp.ClientSession) -> Outcome:
        async with session.get(self.url("/v3/models")) as response:
            data = await response.read()
            if response.status != 200:
                return Outcome(response.status, f"/v3/models: HTTP {response.status}")
            ids = [m["id"] for m in json.loads(data)["data"]]
            return Outcome(200, None if self.model in ids else f"/v3/models lacks {self.model!r}: {ids}")

    async def health(self, session: aiohttp.ClientSession) -> Outcome:
        for path in ("/v2/health/live", "/v2/health/ready"):
            async with session.get(self.url(path)) as response:
                await response.read()
                if response.status != 200:
                    return Outcome(response.status, f"{path}: HTTP {response.status}")
        return Outcome(200)

    async def metrics(self, session: aiohttp.ClientSession) -> Outcome:
        async with session.get(self.url("/metrics")) as response:
            data = await response.read()
            if response.status != 200:
                return Outcome(response.status, f"/metrics: HTTP {response.status}")
            return Outcome(200, None if b"# TYPE" in data else "/metrics: no metric families")

    async def run_one(self, session: aiohttp.ClientSession, kind: str, stuck_s: float) -> None:
        report = self.report
        report.sent[kind] += 1
        started = time.perf_counter()
        try:
            outcome = await asyncio.wait_for(self.kinds[kind](session), stuck_s)
        except TimeoutError:
            report.statuses["stuck"] += 1
            report.by_kind[kind]["stuck"] += 1
            report.fail("stuck", f"{kind}: not done after {stuck_s:.0f} s")
            return
        except (aiohttp.ClientError, OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            outcome = Outcome("client_error", f"{kind}: {type(exc).__name__}: {exc}")
        report.latencies[kind].append(time.perf_counter() - started)
        report.statuses[str(outcome.status)] += 1
        report.by_kind[kind][str(outcome.status)] += 1
        if outcome.status == 429 and kind in GENERATION:
            return  # admission control refused it (overload): an answer, not a failure
        if isinstance(outcome.status, int) and outcome.status >= 500:
            report.fail("server_error", outcome.problem or f"{kind}: HTTP {outcome.status}")
        elif outcome.problem is not None:
            report.fail(outcome.category, outcome.problem)


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


async def _get_json(session: aiohttp.ClientSession, url: URL) -> Any:
    async with session.get(url) as response:
        if response.status != 200:
            return None
        return await response.json(content_type=None)


def _engines(stats: Any) -> dict[str, dict[str, Any]]:
    """Every engine resource in /debug/stats, as "servable/resource" -> its figures."""
    out = {}
    for name, servable in (stats or {}).get("servables", {}).items():
        for resource, figures in (servable.get("resources") or {}).items():
            if isinstance(figures, dict) and "active_requests" in figures:
                out[f"{name}/{resource}"] = figures
    return out


async def soak(
    base_url: str,
    seconds: float,
    clients: int,
    model: str,
    pid: int | None,
    stuck_s: float = 60.0,
    max_rss_growth: float = 0.10,
    check_answers: bool = True,
    quiet: bool = False,
) -> Report:
    report = Report(base_url, seconds, clients, rss_max_growth=max_rss_growth)
    traffic = Traffic(base_url, model, check_answers, report)
    connector = aiohttp.TCPConnector(limit=clients + 4)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        weights = dict(WEIGHTS)
        async with session.get(traffic.url("/metrics")) as response:
            if response.status != 200:
                weights.pop("metrics")  # served only with --metrics_enable
        restarts_before = sum(e.get("restarts", 0) for e in _engines(await _get_json(session, traffic.url("/debug/stats"))).values())
        kinds, chances = list(weights), list(weights.values())
        start = time.monotonic()
        deadline = start + seconds
        samples: list[tuple[float, int]] = []

        async def sample_rss() -> None:
            next_at = time.monotonic()
            while True:
                if pid is not None and (rss := process_tree_rss(pid)) is not None:
                    samples.append((time.monotonic() - start, rss["main"] + rss["children"]))
                    if len(samples) % 10 == 1:  # every 10 s: the server and its children apart
                        report.timeline.append((round(samples[-1][0]), rss["main"], rss["children"]))
                next_at += 1.0
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))

        async def progress() -> None:
            while True:
                await asyncio.sleep(30)
                rss = f", RSS {samples[-1][1] / 2**20:.0f} MiB" if samples else ""
                print(
                    f"soak: {time.monotonic() - start:4.0f} s, {sum(report.sent.values())} requests, "
                    f"failures {sum(report.failures.values())}{rss}",
                    file=sys.stderr,
                    flush=True,
                )

        async def client() -> None:
            while time.monotonic() < deadline:
                await traffic.run_one(session, random.choices(kinds, chances)[0], stuck_s)

        helpers = [asyncio.create_task(sample_rss())]
        if not quiet:
            helpers.append(asyncio.create_task(progress()))
        try:
            await asyncio.gather(*(client() for _ in range(clients)))
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        report.rss = rss_verdict(samples, seconds)
        if report.rss.growth is not None and report.rss.growth > max_rss_growth:
            report.fail("rss_growth", f"RSS grew {report.rss.growth:+.1%} after warm-up (limit {max_rss_growth:+.0%})")
        # Traffic has stopped: every engine must show no live request, soon.
        stopped = time.monotonic()
        engines: dict[str, dict[str, Any]] = {}
        while time.monotonic() - stopped < 30:
            engines = _engines(await _get_json(session, traffic.url("/debug/stats")))
            if all(e.get("active_requests", 0) == 0 and e.get("running", 0) == 0 for e in engines.values()):
                report.live_after_s = time.monotonic() - stopped
                break
            await asyncio.sleep(0.2)
        else:
            report.live_left = {name: {k: e.get(k) for k in ("active_requests", "running")} for name, e in engines.items()}
            report.fail("live_requests", f"engines still have live requests 30 s after the traffic stopped: {report.live_left}")
        report.restarts = sum(e.get("restarts", 0) for e in engines.values()) - restarts_before
        if report.restarts:
            report.fail("engine_restarts", f"{report.restarts} engine worker restart(s) during the soak")
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ovserve soak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=600.0, help="how long to send traffic [600]")
    parser.add_argument("--clients", type=int, default=12, help="concurrent clients, one request at a time each [12]")
    parser.add_argument("--base-url", help="soak this running server (default: start one here on a free port)")
    parser.add_argument("--server-pid", type=int, help="with --base-url: the server's pid for RSS [found from the port]")
    parser.add_argument("--config_path", type=Path, help="config.json of the server started here [the demo's, built if needed]")
    parser.add_argument(
        "--kv-blocks",
        type=int,
        default=1024,
        help="server started here: KV cache of this many blocks (1024: 32768 tokens, 16 MiB on the demo model) instead of "
        "the stock 1 GB, whose pages are touched for the first time over minutes and would look like growth; 0: 1 GB [1024]",
    )
    parser.add_argument("--model", default="tiny", help="model name in requests [tiny]")
    parser.add_argument("--no-check-answers", action="store_true", help="do not check answers (a model other than the demo's)")
    parser.add_argument("--stuck-seconds", type=float, default=60.0, help="a request not done after this long fails the run [60]")
    parser.add_argument("--rss-growth", type=float, default=0.10, help="largest RSS growth after warm-up, as a fraction [0.10]")
    parser.add_argument("--json", type=Path, help="also write the summary as JSON to this file ('-': stdout)")
    parser.add_argument("--seed", type=int, help="random seed of the traffic mix")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.seed is not None:
        random.seed(args.seed)
    from serving import event_loop

    server = None
    if args.base_url:
        base_url = args.base_url
        pid = args.server_pid or pid_listening_on(URL(base_url).port or 80)
    else:
        from serving.bench.server_process import start_server

        config = args.config_path
        if config is None:
            from serving.demo import write_servable
            from serving.model_builder import build_tiny_model

            config = write_servable(Path(".cache/soak").resolve(), build_tiny_model())
            if args.kv_blocks:  # see --kv-blocks
                graph = config.parent / "tiny" / "graph.pbtxt"
                graph.write_text(graph.read_text().replace("cache_size: 1\n", f"cache_size: 1\n      num_kv_blocks: {args.kv_blocks}\n"))
        server = start_server("--config_path", str(config), "--metrics_enable")
        base_url, pid = server.base_url, server.process.pid
        print(f"soak: server {base_url} (pid {pid}) for {args.seconds:.0f} s", file=sys.stderr, flush=True)
    try:
        report = event_loop.run(
            soak(
                base_url,
                args.seconds,
                args.clients,
                args.model,
                pid,
                stuck_s=args.stuck_seconds,
                max_rss_growth=args.rss_growth,
                check_answers=not args.no_check_answers,
                quiet=args.quiet,
            )
        )
    finally:
        if server is not None:
            code = server.stop()
    if server is not None:
        tracebacks = sum("Traceback" in line for line in server.output)
        report.server_log = {
            "exit_code": code,
            "error_lines": sum(" ERROR " in line for line in server.output),
            "tracebacks": tracebacks,
        }
        if tracebacks:
            first = next(i for i, line in enumerate(server.output) if "Traceback" in line)
            report.fail("server_traceback", "\n".join(server.output[max(0, first - 2) : first + 25]))
        if code != 0:
            report.fail("server_exit", f"the server exited with {code}")
    print(report.format())
    if args.json is not None:
        text = json.dumps(report.as_dict(), indent=2)
        if str(args.json) == "-":
            print(text)
        else:
            args.json.write_text(text + "\n")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())

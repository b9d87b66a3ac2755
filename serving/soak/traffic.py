"""The soak's clients: the mix of requests (WEIGHTS), each sent and its answer checked (the tiny
model's exact answers, error shapes, stream events)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from serving import dev_models
from serving.soak.report import CLIENT_CLOSED, Report

# The tiny model's exact answers (tests/models/answers.py: a source checkout, see serving/dev_models.py)
TINY_PROMPTS: dict[str, str] = dev_models.models().TINY_PROMPTS
TINY_COMPLETIONS: dict[str, str] = dev_models.models().TINY_COMPLETIONS

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


@dataclass
class Outcome:
    status: int | str  # HTTP status, or CLIENT_CLOSED
    problem: str | None = None  # why this answer is wrong (None: as expected)
    category: str = "unexpected"  # the failure's kind when there is a problem


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


async def get_json(session: aiohttp.ClientSession, url: URL) -> Any:
    async with session.get(url) as response:
        if response.status != 200:
            return None
        return await response.json(content_type=None)

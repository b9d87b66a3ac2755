"""The HTTP side of `ovserve bench`: stream every request of a workload from an OpenAI-compatible
server and time its content chunks.

The client shares the machine with the server and the engine, so its per-chunk work is kept to a
minimum: the byte stream is split on blank lines, each `data:` event is timestamped, and a chunk
is JSON-decoded (msgspec, only the fields we read) only when a byte check cannot tell whether it
carries content: content chunks of the compact JSON most servers send are recognised without
decoding; role, finish, usage and error chunks are decoded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec
from yarl import URL

from serving.bench.stats import RequestResult
from serving.bench.workload import Workload


class _Delta(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    delta: _Delta | None = None
    text: str | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _Chunk(msgspec.Struct):
    choices: list[_Choice] = []
    usage: _Usage | None = None
    error: msgspec.Raw | None = None


_decode_chunk = msgspec.json.Decoder(_Chunk).decode

# What one SSE event tells us.
IGNORE, CONTENT, DONE = 0, 1, 2


@dataclass(slots=True)
class Event:
    kind: int
    usage: _Usage | None = None
    error: str | None = None


_IGNORE = Event(IGNORE)
_CONTENT = Event(CONTENT)
_DONE = Event(DONE)


def _has_text(payload: bytes, key: bytes) -> bool:
    """`"key":"` followed by at least one character (a non-empty compact JSON string)."""
    at = payload.find(key)
    return at >= 0 and payload[at + len(key) : at + len(key) + 1] != b'"'


def parse_event(event: bytes) -> Event:
    """One SSE event (the bytes between blank lines) -> what it means for the timing."""
    if event.startswith(b"data:"):
        payload = event[6:] if event[5:6] == b" " else event[5:]
        if b"\n" in payload:  # a multi-line event: join its data lines
            payload = b"\n".join(line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:"))
    else:  # comments, `event:`/`id:` lines first, or nothing at all
        lines = [line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
        if not lines:
            return _IGNORE
        payload = b"\n".join(lines)
    if payload == b"[DONE]":
        return _DONE
    if b'"usage":{' not in payload and b'"error"' not in payload:
        if _has_text(payload, b'"content":"') or _has_text(payload, b'"text":"'):
            return _CONTENT
    try:
        chunk = _decode_chunk(payload)
    except msgspec.DecodeError:
        return Event(IGNORE, error=f"undecodable event: {payload[:200]!r}")
    if chunk.error is not None:
        return Event(IGNORE, error=bytes(chunk.error).decode("utf-8", "replace")[:500])
    content = any((c.delta is not None and c.delta.content) or c.text for c in chunk.choices)
    return Event(CONTENT if content else IGNORE, usage=chunk.usage)


def event_text(event: bytes) -> str:
    """The generated text one content event carries (decoded only when the text is kept)."""
    payload = b"\n".join(line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:"))
    try:
        chunk = _decode_chunk(payload)
    except msgspec.DecodeError:
        return ""
    return "".join((c.delta.content or "") if c.delta is not None else (c.text or "") for c in chunk.choices)


def request_body(model: str, text: str, output_len: int, chat: bool, extra: dict[str, Any] | None = None) -> bytes:
    body: dict[str, Any] = {"model": model}
    if chat:
        body["messages"] = [{"role": "user", "content": text}]
    else:
        body["prompt"] = text
    body.update(
        max_tokens=output_len,
        ignore_eos=True,
        stream=True,
        stream_options={"include_usage": True},
        temperature=0,
    )
    body.update(extra or {})
    return msgspec.json.encode(body)


async def _stream_one(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    result: RequestResult,
    requested_tokens: int | None = None,
    keep_text: bool = False,
) -> None:
    """Stream one request into `result`. Tokens come from the usage chunk; with
    `requested_tokens` (servers that send none, like the peer) a stream with content counts
    as that many tokens, and one without any content counts as failed."""
    clock = time.perf_counter
    result.start = clock()
    usage: _Usage | None = None
    try:
        async with session.post(url, data=body, headers=headers) as response:
            if response.status != 200:
                result.error = f"HTTP {response.status}: {(await response.text())[:500]}"
                return
            times = result.chunk_times
            pending = b""
            async for data in response.content.iter_any():
                now = clock()
                if b"\r" in data:
                    data = data.replace(b"\r\n", b"\n")
                pending = pending + data if pending else data
                if b"\n\n" not in pending:
                    continue
                *events, pending = pending.split(b"\n\n")
                for raw in events:
                    event = parse_event(raw)
                    if event.kind == CONTENT:
                        times.append(now)
                        if keep_text:
                            result.text += event_text(raw)
                    if event.usage is not None:
                        usage = event.usage
                    if event.error is not None:
                        result.error = event.error
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        result.end = clock()
    if result.error is None and requested_tokens is not None:
        if not result.chunk_times:
            result.error = "the stream carried no content"
        else:
            result.output_tokens = requested_tokens
    elif result.error is None:
        if usage is None:
            result.error = "the stream had no usage chunk (stream_options.include_usage)"
        else:
            result.prompt_tokens = usage.prompt_tokens
            result.output_tokens = usage.completion_tokens


@dataclass
class ServerRun:
    results: list[RequestResult]
    duration_s: float
    loop_lag: dict[str, Any] | None  # the server's /debug/loop_lag over the run, when it has one
    client_cpu_s: float  # CPU this process spent while the requests ran


async def _loop_lag(session: aiohttp.ClientSession, origin: URL, since: float | None) -> dict[str, Any] | None:
    url = origin.with_path("/debug/loop_lag")
    if since is not None:
        url = url.with_query(since=repr(since))
    try:
        async with session.get(url) as response:
            if response.status != 200:
                return None
            data = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("now"), int | float) else None


def _session(limit: int, keepalive: bool = True) -> aiohttp.ClientSession:
    # keepalive=False: a new connection per request, for servers that close kept-alive
    # connections unannounced (llama-server's HTTP library after a few requests on one).
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, force_close=not keepalive)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=60)
    return aiohttp.ClientSession(connector=connector, timeout=timeout)


async def discover_model(base_url: str, endpoint: str, api_key: str | None = None) -> str:
    """The first model of `<prefix>/models` (prefix: the endpoint without its `/…completions`)."""
    path = endpoint.rstrip("/")
    for tail in ("/chat/completions", "/completions"):
        if path.endswith(tail):
            path = path[: -len(tail)]
            break
    url = base_url.rstrip("/") + path + "/models"
    async with _session(1) as session, session.get(url, headers=_headers(api_key)) as response:
        response.raise_for_status()
        data = await response.json(content_type=None)
    return str(data["data"][0]["id"])


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


async def run_workload(
    base_url: str,
    endpoint: str,
    model: str,
    workload: Workload,
    max_concurrency: int | None,
    *,
    api_key: str | None = None,
    extra_body: dict[str, Any] | None = None,
    on_done: Callable[[], None] | None = None,
    measure_loop_lag: bool = True,
    tokens_from_usage: bool = True,
    keepalive: bool = True,
    keep_text: bool = False,
) -> ServerRun:
    """Send every prompt at its arrival time (at most `max_concurrency` at once), streaming;
    `keep_text`: also keep each request's generated text (decodes every content chunk)."""
    url = base_url.rstrip("/") + "/" + endpoint.lstrip("/")
    origin = URL(base_url).origin()
    headers = _headers(api_key)
    bodies = [request_body(model, p.text, workload.output_len, workload.chat, extra_body) for p in workload.prompts]
    limit = max_concurrency or len(bodies) or 1
    results = [RequestResult() for _ in bodies]
    async with _session(limit, keepalive) as session:
        lag_before = await _loop_lag(session, origin, None) if measure_loop_lag else None
        semaphore = asyncio.Semaphore(limit)
        cpu_started = time.process_time()
        started = time.perf_counter()

        async def one(index: int) -> None:
            delay = started + workload.arrivals[index] - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            async with semaphore:
                requested = None if tokens_from_usage else workload.output_len
                await _stream_one(session, url, bodies[index], headers, results[index], requested, keep_text)
            if on_done is not None:
                on_done()

        await asyncio.gather(*(one(i) for i in range(len(bodies))))
        duration = time.perf_counter() - started
        client_cpu_s = time.process_time() - cpu_started
        lag = await _loop_lag(session, origin, lag_before["now"]) if lag_before is not None else None
    return ServerRun(results, duration, lag, client_cpu_s)

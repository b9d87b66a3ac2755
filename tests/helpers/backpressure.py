"""Backpressure probes on a real server: engine figures, a metric's value, raw request bytes, polling."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any, NamedTuple

from tests.helpers.http import user
from tests.helpers.server import Server

BOUND_S = 120  # guards against a hang only


def get_json(server: Server, path: str) -> Any:
    with urllib.request.urlopen(server.base_url + path, timeout=BOUND_S) as response:
        return json.load(response)


def engine(server: Server) -> dict[str, Any]:
    return get_json(server, "/debug/stats")["servables"]["tiny"]["resources"]["llm"]  # type: ignore[no-any-return]


def metric(server: Server, name: str) -> float:
    with urllib.request.urlopen(server.base_url + "/metrics", timeout=BOUND_S) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def request_bytes(path: str, body: dict[str, Any], close: bool = False) -> bytes:
    data = json.dumps(body).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    return head.encode() + (b"Connection: close\r\n" if close else b"") + b"\r\n" + data


def poll(what: str, condition: Any) -> None:
    deadline = time.monotonic() + BOUND_S
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


class FrontEndStream(NamedTuple):
    """A front end's long stream for the stuck-client tests, and a short unary question on it."""

    path: str
    stream: dict[str, Any]  # the stream nobody reads
    pipelined: int  # how many on one connection: more output than loopback's buffers hold (~3 MB)
    ask: dict[str, Any]  # a bystander's question ("Say this is a test")
    text_of: Callable[[Any], str]  # the answer's text in its JSON body


# The Responses and Anthropic streams take no logprobs: a Responses stream is made big by
# `metadata`, which its response.created, .in_progress and .completed events echo (~240 KB a
# stream); an Anthropic story is ~20 KB, so many more are pipelined (those after the stuck one
# never run: its connection is cut).
FRONT_END_STREAMS = {
    "responses": FrontEndStream(
        "/v3/responses",
        {"model": "tiny", "input": "Tell me a story.", "stream": True, "metadata": {f"k{i}": "x" * 4000 for i in range(16)}},
        40,
        {"model": "tiny", "input": "Say this is a test"},
        lambda answer: str(answer["output"][0]["content"][0]["text"]),
    ),
    "anthropic": FrontEndStream(
        "/v1/messages",
        {"model": "tiny", "max_tokens": 480, "messages": user("Tell me a story."), "stream": True},
        400,
        {"model": "tiny", "max_tokens": 64, "messages": user("Say this is a test")},
        lambda answer: str(answer["content"][0]["text"]),
    ),
}

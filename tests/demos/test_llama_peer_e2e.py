"""llama-server on SmolLM2's GGUF, when it has been built here (demos/benchmark/llama_server_setup.sh,
~10 min); CI does not build it, so there this module skips."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from serving.demo import smollm2_gguf
from tests.helpers.bench_peers import load

peer = load("llama_peer")

pytestmark = pytest.mark.skipif(
    not peer.binary().is_file(),
    reason="llama-server not built (demos/benchmark/llama_server_setup.sh takes ~10 min; CI does not build it)",
)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = peer.start(smollm2_gguf(), port, ctx_size=2 * 4096, parallel=2, threads=2)
    try:
        yield port, proc
    finally:
        peer.stop(proc)


def stream(port: int, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The chunks of one streamed chat completion, up to `data: [DONE]`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", peer.ROUTE, json.dumps({**body, "stream": True}), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
        chunks: list[dict[str, Any]] = []
        for raw in resp:
            line = raw.decode().strip()
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                return chunks
            chunks.append(json.loads(line[len("data: ") :]))
        raise AssertionError("stream ended without [DONE]")
    finally:
        conn.close()


def test_ignore_eos_streams_exactly_max_tokens(server: tuple[int, subprocess.Popen[bytes]]) -> None:
    body = {
        "messages": [{"role": "user", "content": "Say hi."}],
        "max_tokens": 48,
        "ignore_eos": True,
        "temperature": 0,  # greedy: a plain-English answer, so no token is held back mid-character
        "stream_options": {"include_usage": True},
    }
    chunks = stream(server[0], body)
    # The last chunk: no choices, the OpenAI usage and llama.cpp's timings.
    last = chunks[-1]
    assert last["choices"] == []
    assert last["usage"]["completion_tokens"] == 48
    assert last["timings"]["predicted_n"] == 48
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "length"
    # One chunk with content per generated token (but a token ending inside a multi-byte character
    # would be held back and sent with the next one: count tokens with usage).
    contents = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content") is not None]
    assert len(contents) == 48


def test_rss(server: tuple[int, subprocess.Popen[bytes]]) -> None:
    assert 50 < peer.rss_mib(server[1]) < 2048  # at least the 98 MB model file, read in

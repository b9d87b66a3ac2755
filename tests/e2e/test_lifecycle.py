"""Lifecycle against a real server: SIGTERM drains (readiness false, new requests 503, the
stream in flight finishes, exit 0), --shutdown_timeout cuts a drain short, and a killed engine
worker is restarted without restarting the server.

The engine worker is paused with SIGSTOP while the server is told to stop, so a stream is
surely still in flight when the drain starts: nothing here depends on how fast the model is.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.http import BOUND_S, CHAT, RawStream, assert_openai_error, get, post, user
from tests.helpers.processes import start_tiny, stopping_server
from tests.helpers.server import Server
from tests.helpers.stats import worker_stats
from tests.models import TINY_PROMPTS

LONG = {"model": "tiny", "messages": user("Tell me a story."), "stream": True, "max_tokens": 300, "ignore_eos": True}


def test_sigterm_drains_a_stream_in_flight(tiny_model_dir: Path) -> None:
    with stopping_server(tiny_model_dir, "--shutdown_timeout", "120") as (server, worker):
        stream = RawStream(server, LONG)
        stream.read_until(b"data: ")  # generation has started
        os.kill(worker, signal.SIGSTOP)  # hold the stream in flight
        server.process.send_signal(signal.SIGTERM)
        # Readiness goes false and new requests get a 503 while the stream is held.
        deadline = time.monotonic() + BOUND_S
        while get(server, "/v2/health/ready")[0] != 503:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        status, headers, body = post(server, CHAT, {"model": "tiny", "messages": user("Say this is a test")})
        assert_openai_error(status, body, 503)
        assert headers.get("Retry-After")
        assert get(server, "/v2/health/live")[0] == 200
        os.kill(worker, signal.SIGCONT)
        stream.read_to_end()
        assert stream.received.rstrip().endswith(b"data: [DONE]")
        events = stream.events()
        assert events[-1]["choices"][0]["finish_reason"] == "length"
        assert all("error" not in e for e in events)
        assert server.process.wait(timeout=BOUND_S) == 0
    assert any("draining: 1 request(s) in flight" in line for line in server.output), server.output


def test_shutdown_timeout_cancels_what_is_left(tiny_model_dir: Path) -> None:
    with stopping_server(tiny_model_dir, "--shutdown_timeout", "0.5") as (server, worker):
        stream = RawStream(server, LONG)
        stream.read_until(b"data: ")
        os.kill(worker, signal.SIGSTOP)  # the stream cannot finish in time
        server.process.send_signal(signal.SIGTERM)
        stream.read_to_end()  # the server cuts it after --shutdown_timeout
        assert b"data: [DONE]" not in stream.received
        os.kill(worker, signal.SIGCONT)
        assert server.process.wait(timeout=BOUND_S) == 0
    assert any("still in flight: cancelling them" in line for line in server.output), server.output


@pytest.fixture(scope="module")
def crash_server(tiny_model_dir: Path) -> Iterator[Server]:
    server = start_tiny(tiny_model_dir)
    yield server
    assert server.stop() == 0, "\n".join(server.output)


def test_killed_engine_worker_is_restarted(crash_server: Server) -> None:
    server = crash_server
    before = worker_stats(server)
    stream = RawStream(server, LONG)
    stream.read_until(b"data: ")
    os.kill(before["pid"], signal.SIGKILL)
    # The request in flight gets a clear error in the stream, then a proper end.
    stream.read_to_end()
    errors = [e["error"] for e in stream.events() if "error" in e]
    assert len(errors) == 1 and "engine worker stopped" in errors[0]["message"], stream.received[-800:]
    assert errors[0]["type"] != "internal_error"
    assert stream.received.rstrip().endswith(b"data: [DONE]")
    # A new worker comes up; the server never restarted and serves the exact answers again.
    deadline = time.monotonic() + BOUND_S
    while (stats := worker_stats(server))["restarts"] < 1 or not stats["alive"]:
        assert time.monotonic() < deadline, stats
        time.sleep(0.05)
    assert stats["pid"] != before["pid"]
    assert get(server, "/v2/health/ready")[0] == 200
    status, _, reply = post(server, CHAT, {"model": "tiny", "messages": user("Say this is a test")})
    assert status == 200, reply
    assert json.loads(reply)["choices"][0]["message"]["content"] == TINY_PROMPTS["Say this is a test"]
    assert server.process.poll() is None


def test_requests_while_the_worker_is_down_get_a_503(crash_server: Server) -> None:
    """Between the crash and the restart a request gets a 503 (or, if the new worker is already
    up, its answer): never a 500 and never a hang."""
    os.kill(worker_stats(crash_server)["pid"], signal.SIGKILL)
    conn = http.client.HTTPConnection("127.0.0.1", crash_server.port, timeout=BOUND_S)
    try:
        conn.request(
            "POST",
            CHAT,
            body=json.dumps({"model": "tiny", "messages": user("Say this is a test")}),
            headers={"Content-Type": "application/json"},
        )
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status == 200:
        assert json.loads(body)["choices"][0]["message"]["content"] == TINY_PROMPTS["Say this is a test"]
    else:
        assert_openai_error(response.status, body, 503)

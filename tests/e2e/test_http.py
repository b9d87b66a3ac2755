"""Raw HTTP against a real server: SSE framing, error shapes and codes, cancellation."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

from tests.helpers.http import CHAT, assert_openai_error, get, post, user
from tests.helpers.server import Server
from tests.models import TINY_PROMPTS


def test_sse_framing(server: Server) -> None:
    status, headers, body = post(server, CHAT, {"model": "tiny", "messages": user("Say this is a test"), "stream": True})
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    text = body.decode()
    assert text.endswith("data: [DONE]\n\n")
    events = text.split("\n\n")[:-1]
    assert all(e.startswith("data: ") and "\n" not in e for e in events)
    payloads = [json.loads(e[len("data: ") :]) for e in events[:-1]]
    content = "".join(p["choices"][0]["delta"].get("content", "") for p in payloads)
    assert content == TINY_PROMPTS["Say this is a test"]
    assert payloads[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert payloads[-1]["choices"][0]["finish_reason"] == "stop"


def test_v1_alias_and_plain_prompt_list(server: Server) -> None:
    status, _, body = post(server, "/v1/completions", {"model": "tiny", "prompt": ["The capital of France is"], "max_tokens": 3})
    assert status == 200, body
    assert json.loads(body)["choices"][0]["text"].startswith(" Paris")


def test_text_content_parts(server: Server) -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "Say this "}, {"type": "text", "text": "is a test"}]}]
    status, _, body = post(server, CHAT, {"model": "tiny", "messages": messages})
    assert status == 200, body
    assert json.loads(body)["choices"][0]["message"]["content"] == TINY_PROMPTS["Say this is a test"]


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        (b"{not json", 400, None),
        (b"", 400, None),
        (b"[1, 2]", 400, None),
        (b'{"model": "tiny", "messages": [{"role": "user", "content": "\xff\xfe"}]}', 400, None),
        ({"messages": user("hi")}, 400, "model"),
        ({"model": "nope", "messages": user("hi")}, 404, "model"),
        ({"model": "tiny", "messages": []}, 400, "messages"),
        ({"model": "tiny"}, 400, "messages"),
        ({"model": "tiny", "messages": "hi"}, 400, "messages"),
        ({"model": "tiny", "messages": [{"role": "wizard", "content": "hi"}]}, 400, "messages.0.role"),
        ({"model": "tiny", "messages": user("hi"), "max_tokens": -1}, 400, "max_tokens"),
        ({"model": "tiny", "messages": user("hi"), "max_tokens": "ten"}, 400, "max_tokens"),
        ({"model": "tiny", "messages": user("hi"), "max_tokens": 10**30}, 400, "max_tokens"),
        ({"model": "tiny", "messages": user("hi"), "temperature": 3}, 400, "temperature"),
        ({"model": "tiny", "messages": user("hi"), "top_p": 0}, 400, "top_p"),
        ({"model": "tiny", "messages": user("hi"), "n": 0}, 400, "n"),
        ({"model": "tiny", "messages": user("hi"), "n": 2}, 400, "n"),
        ({"model": "tiny", "messages": user("hi"), "n": 2, "temperature": 0}, 400, "n"),
        ({"model": "tiny", "messages": user("hi"), "n": 21, "temperature": 1}, 400, "n"),
        ({"model": "tiny", "messages": user("hi"), "stop": [""]}, 400, "stop"),
        ({"model": "tiny", "messages": user("hi"), "stream": "yes"}, 400, "stream"),
        ({"model": "tiny", "messages": user("hi"), "stream_options": {"include_usage": True}}, 400, "stream_options"),
        ({"model": "tiny", "messages": user("hi"), "logit_bias": {"1": 5}}, 400, "logit_bias"),
        ({"model": "tiny", "messages": user("hi"), "max_tokens": 5000}, 400, "max_tokens"),
        ({"model": "tiny", "messages": user("word " * 2000)}, 400, "messages"),
        ({"model": "tiny", "messages": user("hi"), "stream": True, "max_tokens": 600}, 400, "max_tokens"),
        ({"model": "tiny", "messages": user("word " * 2000), "stream": True}, 400, "messages"),
    ],
)
def test_bad_requests_get_openai_errors(server: Server, body: bytes | dict[str, Any], status: int, param: str | None) -> None:
    got_status, headers, got_body = post(server, CHAT, body)
    assert headers["Content-Type"].startswith("application/json")  # never SSE, even with stream: true
    assert_openai_error(got_status, got_body, status, param)


def test_refused_requests_withdraw_their_engine_announcement(server: Server) -> None:
    """A request announces itself to the engine worker when its run starts; one refused before
    reaching the engine withdraws it, or the worker would keep waiting for it before steps."""
    for _ in range(3):
        status, _, _ = post(server, CHAT, {"model": "tiny", "messages": user("word " * 2000)})
        assert status == 400
    status, _, _ = post(server, CHAT, {"model": "tiny", "messages": user("Say this is a test")})
    assert status == 200
    assert engine_stats(server)["expected"] == 0


def test_completions_bad_requests(server: Server) -> None:
    status, _, body = post(server, "/v3/completions", {"model": "tiny", "prompt": 5})
    assert_openai_error(status, body, 400, "prompt")
    status, _, body = post(server, "/v3/completions", {"model": "tiny", "prompt": "x " * 3000})
    assert_openai_error(status, body, 400, "prompt")


def test_routes_and_methods(server: Server) -> None:
    status, body = get(server, CHAT)
    assert_openai_error(status, body, 405)
    status, body = get(server, "/v3/nothing-here")
    assert_openai_error(status, body, 404)
    assert get(server, "/v2/health/live")[0] == 200
    assert get(server, "/v2/health/ready")[0] == 200
    status, body = get(server, "/v3/models")
    assert status == 200 and [m["id"] for m in json.loads(body)["data"]] == ["tiny"]


def test_body_too_large(server: Server) -> None:
    huge = b'{"model": "tiny", "prompt": "' + b"a" * (17 * 1024 * 1024) + b'"}'
    status, _, body = post(server, "/v3/completions", huge)
    assert_openai_error(status, body, 413)


def engine_stats(server: Server) -> dict[str, Any]:
    status, body = get(server, "/debug/stats")
    assert status == 200
    return json.loads(body)["servables"]["tiny"]["resources"]["llm"]  # type: ignore[no-any-return]


def test_disconnect_cancels_engine_request(server: Server) -> None:
    before = engine_stats(server)
    body = json.dumps(
        {"model": "tiny", "messages": user("Tell me a story."), "stream": True, "max_tokens": 450, "ignore_eos": True}
    ).encode()
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(
        b"POST /v3/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    received = b""
    while b"data: " not in received:  # the first SSE bytes: generation has started
        chunk = sock.recv(4096)
        assert chunk, "server closed the stream"
        received += chunk
    assert received.startswith(b"HTTP/1.1 200")
    sock.close()  # the client vanishes mid-stream
    # Wait (bounded) until the worker reports the request gone; it must have been cancelled,
    # not run to its 450 tokens.
    deadline = time.monotonic() + 60
    stats = engine_stats(server)
    while (stats["cancelled"] == before["cancelled"] or stats["running"]) and time.monotonic() < deadline:
        time.sleep(0.05)
        stats = engine_stats(server)
    assert stats["cancelled"] == before["cancelled"] + 1
    assert stats["running"] == 0 and stats["active_requests"] == 0
    # and the server carries on
    status, _, reply = post(server, CHAT, {"model": "tiny", "messages": user("Say this is a test")})
    assert status == 200 and json.loads(reply)["choices"][0]["message"]["content"] == TINY_PROMPTS["Say this is a test"]


def test_concurrent_requests_each_get_their_answer(server: Server) -> None:
    from concurrent.futures import ThreadPoolExecutor

    prompts = sorted(TINY_PROMPTS) * 3

    def ask(prompt: str) -> str:
        status, _, body = post(server, CHAT, {"model": "tiny", "messages": user(prompt), "stream": prompt.startswith("T")})
        assert status == 200
        if body.startswith(b"data: "):
            events = [json.loads(e[6:]) for e in body.decode().split("\n\n") if e.startswith("data: {")]
            return "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
        return json.loads(body)["choices"][0]["message"]["content"]  # type: ignore[no-any-return]

    with ThreadPoolExecutor(max_workers=len(prompts)) as pool:
        answers = list(pool.map(ask, prompts))
    assert answers == [TINY_PROMPTS[p] for p in prompts]


def test_loop_lag_endpoint(server: Server) -> None:
    status, body = get(server, "/debug/loop_lag")
    assert status == 200
    first = json.loads(body)
    assert set(first) == {"now", "samples", "p50_ms", "p99_ms", "max_ms"}
    assert first["samples"] > 0  # the monitor ticks every 10 ms from startup
    status, body = get(server, f"/debug/loop_lag?since={first['now'] + 3600}")
    assert status == 200 and json.loads(body)["samples"] == 0  # nothing after a time in the future
    status, body = get(server, "/debug/loop_lag?since=soon")
    assert_openai_error(status, body, 400, "since")

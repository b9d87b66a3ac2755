"""Raw HTTP against a real server: post/get, chat messages, the OpenAI error shape, SSE streams."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

from tests.helpers.server import Server

CHAT = "/v3/chat/completions"


def post(
    server: Server, path: str, body: bytes | dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn.request("POST", path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def get(server: Server, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def user(content: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": content}]


def assert_openai_error(status: int, body: bytes, expected_status: int, param: str | None = None) -> dict[str, Any]:
    assert status == expected_status, body
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if param is not None:
        assert error["param"] == param, error
    return error  # type: ignore[no-any-return]


BOUND_S = 120  # guards against a hang only


class RawStream:
    """A streaming chat request over a raw socket (HTTP/1.0: no chunk framing in the events)."""

    def __init__(self, server: Server, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=BOUND_S)
        self.sock.sendall(
            b"POST /v3/chat/completions HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        self.received = b""

    def read_until(self, marker: bytes) -> None:
        while marker not in self.received:
            chunk = self.sock.recv(65536)
            assert chunk, f"the stream ended before {marker!r}: {self.received[-500:]!r}"
            self.received += chunk

    def read_to_end(self) -> bytes:
        while chunk := self.sock.recv(65536):
            self.received += chunk
        self.sock.close()
        return self.received

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.received.split(b"\n"):
            line = line.strip()
            if line.startswith(b"{") or line.startswith(b"data: {"):
                out.append(json.loads(line.removeprefix(b"data: ")))
        return out


def chat(server: Server, model: str, prompt: str, **extra: Any) -> str:
    status, _headers, body = post(server, CHAT, {"model": model, "messages": user(prompt), "max_tokens": 200, **extra})
    assert status == 200, body
    choice = json.loads(body)["choices"][0]
    assert choice["finish_reason"] == "stop", choice
    return choice["message"]["content"]  # type: ignore[no-any-return]


def chat_stream(server: Server, model: str, prompt: str, **extra: Any) -> str:
    body = {"model": model, "messages": user(prompt), "max_tokens": 200, "stream": True, **extra}
    status, _headers, raw = post(server, CHAT, body)
    assert status == 200, raw
    text = raw.decode()
    assert text.endswith("data: [DONE]\n\n")
    events = [json.loads(e[len("data: ") :]) for e in text.split("\n\n")[:-2]]
    assert events[-1]["choices"][0]["finish_reason"] == "stop"
    return "".join(e["choices"][0]["delta"].get("content") or "" for e in events)

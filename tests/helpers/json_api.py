"""JSON over HTTP against a real server: get/post whose bodies are decoded, and a one-line chat question."""

from __future__ import annotations

import http.client
import json
from typing import Any

from tests.helpers.server import Server


def get(server: Server, path: str) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def post(server: Server, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
    try:
        conn.request("POST", path, body=json.dumps(body or {}), headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def ask(server: Server, model: str, prompt: str) -> str:
    status, body = post(server, "/v3/chat/completions", {"model": model, "messages": [{"role": "user", "content": prompt}]})
    assert status == 200, body
    return body["choices"][0]["message"]["content"]  # type: ignore[no-any-return]

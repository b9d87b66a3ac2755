"""Backpressure probes on a real server: engine figures, a metric's value, raw request bytes, polling."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

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

"""Operations against a real server: TLS, CORS, JSON logs that keep prompts out, and the
prompt-logging switch that only works together with DEBUG."""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.helpers.server import Server, start_server
from tests.helpers.tls import make_certificate
from tests.models import TINY_PROMPTS

ORIGIN = "https://app.example"
SECRET_PROMPT = "Say this is a test"  # the marker below rides along in a second message
MARKER = "zq-private-marker-7731"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, certificate: tuple[Path, Path]) -> Iterator[Server]:
    cert, key = certificate
    srv = start_server(
        "--model_path", str(tiny_model_dir), "--model_name", "tiny",
        "--ssl_certfile", str(cert), "--ssl_keyfile", str(key),
        "--log_format", "json",
        "--allowed_origins", f"{ORIGIN},https://other.example", "--allow_credentials", "true",
        "--allowed_methods", "GET,POST", "--allowed_headers", "content-type,authorization",
        "--log_request_content",  # without --log_level DEBUG: must change nothing
    )  # fmt: skip
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


def tls_context(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def request(
    server: Server, cert: Path, method: str, path: str, headers: dict[str, str], body: bytes | None = None
) -> http.client.HTTPResponse:
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, timeout=60, context=tls_context(cert))
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def test_tls_serves_the_openai_client(server: Server, certificate: tuple[Path, Path]) -> None:
    assert server.base_url.startswith("https://")
    cert = certificate[0]
    with httpx.Client(verify=tls_context(cert)) as http_client:
        client = openai.OpenAI(base_url=server.base_url + "/v3", api_key="unused", http_client=http_client, max_retries=0)
        reply = client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": SECRET_PROMPT}, {"role": "user", "content": MARKER}], max_tokens=4
        )
        assert reply.choices[0].message.content
        reply = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": SECRET_PROMPT}])
        assert reply.choices[0].message.content == TINY_PROMPTS[SECRET_PROMPT]


def test_plain_http_is_refused_on_a_tls_port(server: Server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/v2/health/live")
        status = conn.getresponse().status
    except (ConnectionError, http.client.HTTPException):
        return  # refused outright
    finally:
        conn.close()
    assert status == 400  # aiohttp answers a plain request on a TLS socket with a bad request


def test_cors_preflight_and_response_headers(server: Server, certificate: tuple[Path, Path]) -> None:
    cert = certificate[0]
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "Content-Type, Authorization"}
    response = request(server, cert, "OPTIONS", "/v3/chat/completions", preflight)
    assert response.status == 204
    assert response.getheader("Access-Control-Allow-Origin") == ORIGIN
    assert response.getheader("Access-Control-Allow-Credentials") == "true"
    assert response.getheader("Access-Control-Allow-Methods") == "POST"
    assert response.getheader("Access-Control-Allow-Headers") == "authorization, content-type"

    refusals = ({"Origin": "https://evil.example"}, {"Access-Control-Request-Method": "DELETE"}, {"Access-Control-Request-Headers": "x"})
    for refused in refusals:
        assert request(server, cert, "OPTIONS", "/v3/chat/completions", {**preflight, **refused}).status == 403

    body = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": SECRET_PROMPT}], "stream": True}).encode()
    streamed = request(server, cert, "POST", "/v3/chat/completions", {"Origin": ORIGIN, "Content-Type": "application/json"}, body)
    assert streamed.status == 200
    assert streamed.getheader("Access-Control-Allow-Origin") == ORIGIN
    assert streamed.getheader("Vary") == "Origin"
    foreign = request(server, cert, "GET", "/v3/models", {"Origin": "https://evil.example"})
    assert foreign.status == 200 and foreign.getheader("Access-Control-Allow-Origin") is None


def test_logs_are_json_and_keep_prompts_out(server: Server) -> None:
    # The requests above have run; the log has the startup and servable lines by now.
    log_lines = [line for line in server.output if line.startswith("{")]
    entries = [json.loads(line) for line in log_lines]
    assert any(e["level"] == "INFO" and "available" in e["message"] for e in entries), server.output
    assert all({"time", "level", "logger", "message", "pid"} <= set(e) for e in entries)
    # Every line is either one of the server's own announcements or a JSON log entry.
    others = [line for line in server.output if not line.startswith("{") and not line.startswith("ovserve: ")]
    assert others == []
    assert MARKER not in "\n".join(server.output)


def test_prompt_logging_needs_debug_and_the_flag(tiny_model_dir: Path) -> None:
    srv = start_server("--model_path", str(tiny_model_dir), "--model_name", "tiny", "--log_level", "DEBUG", "--log_request_content")
    try:
        with openai.OpenAI(base_url=srv.base_url + "/v3", api_key="unused", max_retries=0) as client:
            client.completions.create(model="tiny", prompt=MARKER, max_tokens=2)
    finally:
        assert srv.stop() == 0
    assert any(MARKER in line for line in srv.output)

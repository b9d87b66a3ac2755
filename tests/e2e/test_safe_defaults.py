"""Safe defaults of a server started with no CORS, Host or config flags, as people run it on a
laptop (issue 23, defects 3 and 6): a web page cannot read answers (no CORS headers), cannot
send a JSON body without a preflight (a `text/plain` POST is a 415), cannot reach the server
under a rebound name (foreign Host: 403), cannot reload the config (off: 404); a non-UTF-8
Authorization header is a 401 with nothing in the log; the Bearer scheme is case-insensitive."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.helpers.http import assert_openai_error
from tests.helpers.server import Server, start_server
from tests.models import TINY_PROMPTS

KEY = "sk-safe-0123456789"
CHAT_BODY = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "Say this is a test"}], "max_tokens": 20})
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    key_file = tmp_path_factory.mktemp("safe") / "key.txt"
    key_file.write_text(KEY)
    srv = start_server("--model_path", str(tiny_model_dir), "--model_name", "tiny", "--api_key_file", str(key_file))
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


def request(server: Server, method: str, path: str, body: str | None = None, **headers: str) -> http.client.HTTPResponse:
    """`headers` replace http.client's own (Host included); the response is read."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        conn.putrequest(method, path, skip_host="Host" in headers, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        data = body.encode() if body is not None else None
        if data is not None:
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        response = conn.getresponse()
        response.read()
        return response
    finally:
        conn.close()


def raw_status(server: Server, head: bytes) -> tuple[int, bytes]:
    """Send `head` (request line and headers, non-UTF-8 bytes allowed) and a JSON body."""
    body = CHAT_BODY.encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=120) as sock:
        sock.sendall(head + b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    status_line, _, rest = reply.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def test_no_cors_headers_by_default(server: Server) -> None:
    response = request(server, "GET", "/v3/models", Origin="https://evil.example", **AUTH)
    assert response.status == 200 and response.getheader("Access-Control-Allow-Origin") is None
    response = request(server, "POST", "/v3/chat/completions", CHAT_BODY, Origin="https://evil.example", **AUTH)
    assert response.status == 403 and response.getheader("Access-Control-Allow-Origin") is None


def test_a_text_plain_post_is_415(server: Server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        conn.request("POST", "/v3/chat/completions", body=CHAT_BODY, headers={"Content-Type": "text/plain", **AUTH})
        response = conn.getresponse()
        error = assert_openai_error(response.status, response.read(), 415)
    finally:
        conn.close()
    assert error["code"] == "unsupported_media_type"


def test_a_foreign_host_is_refused_and_localhost_served(server: Server) -> None:
    for path in ("/v3/models", "/v2/health/live"):
        response = request(server, "GET", path, Host="evil.example", **AUTH)
        assert response.status == 403
    assert request(server, "GET", "/v3/models", Host=f"localhost:{server.port}", **AUTH).status == 200
    assert request(server, "GET", "/v2/health/live", Host=f"127.0.0.1:{server.port}").status == 200


def test_the_config_api_is_off(server: Server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        conn.request("POST", "/v1/config/reload", headers=AUTH)
        response = conn.getresponse()
        error = assert_openai_error(response.status, response.read(), 404)
    finally:
        conn.close()
    assert error["code"] == "config_api_off" and "--enable_config_api" in error["message"]


def test_a_non_utf8_authorization_is_a_401_without_a_traceback(server: Server) -> None:
    before = len(server.output)
    for value in (b"Bearer \xff\xfe\x80", b"\xc3\x28 " + KEY.encode(), b"Bearer " + KEY.encode() + b"\xff"):
        status, body = raw_status(server, b"POST /v3/chat/completions HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + value + b"\r\n")
        error = assert_openai_error(status, body, 401)
        assert error["type"] == "authentication_error"
    assert request(server, "GET", "/v2/health/live").status == 200  # a request after them: their log lines are out
    assert not any("Traceback" in line for line in server.output[before:]), "\n".join(server.output[before:])


def test_the_bearer_scheme_is_case_insensitive(server: Server) -> None:
    for value in (f"bearer   {KEY}", f"BEARER {KEY}", f"Bearer\t{KEY}"):
        status, body = raw_status(
            server, b"POST /v3/chat/completions HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + value.encode() + b"\r\n"
        )
        assert status == 200, body
        assert json.loads(body)["choices"][0]["message"]["content"] == TINY_PROMPTS["Say this is a test"]


def test_the_openai_sdk_still_works(server: Server) -> None:
    with openai.OpenAI(base_url=server.base_url + "/v3", api_key=KEY, max_retries=0) as client:
        reply = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "Say this is a test"}])
    assert reply.choices[0].message.content == TINY_PROMPTS["Say this is a test"]

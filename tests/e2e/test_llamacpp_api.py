"""llama.cpp's server extras (GET /health, GET /props, root POST /tokenize and /detokenize) in raw
HTTP against a real server on the tiny model, held to llama-server's shapes (checked against the
built llama-server 0.3.36 on SmolLM2: the same keys and types), with an API key and metrics on."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from calculators.llm.model_files import ModelTokenizer
from serving import llamacpp
from serving.servable import ServableManager
from serving.state import SERVABLES
from tests.helpers.http import post
from tests.helpers.server import Server, start_server

KEY = "sk-llamacpp-test"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    key_file = tmp_path_factory.mktemp("llamacpp") / "key.txt"
    key_file.write_text(KEY + "\n")
    srv = start_server(
        "--model_path", str(tiny_model_dir), "--model_name", "tiny", "--api_key_file", str(key_file), "--metrics_enable",
    )  # fmt: skip
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> ModelTokenizer:
    return ModelTokenizer.load(tiny_model_dir)


def get(server: Server, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("GET", path, headers=AUTH if headers is None else headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def call(server: Server, path: str, body: dict[str, Any] | bytes) -> tuple[int, Any]:
    status, _, reply = post(server, path, body, AUTH)
    return status, json.loads(reply)


def test_health(server: Server) -> None:
    assert get(server, "/health") == (200, {"status": "ok"})


def test_props(server: Server, tiny_model_dir: Path, tokenizer: ModelTokenizer) -> None:
    status, props = get(server, "/props")
    assert status == 200, props
    settings = props["default_generation_settings"]
    assert settings["n_ctx"] == tokenizer.context_length == 512
    assert {"temperature", "top_k", "top_p", "seed", "n_predict", "max_tokens"} <= set(settings["params"])
    assert props["chat_template"] == tokenizer.chat_template and props["total_slots"] == 256
    assert props["model_alias"] == "tiny" and Path(props["model_path"]) == tiny_model_dir.resolve()
    assert props["modalities"] == {"vision": False, "audio": False, "video": False}
    assert props["build_info"].startswith("ovserve ") and props["eos_token"] == tokenizer.eos_token
    assert get(server, "/props?model=tiny") == (200, props)
    status, error = get(server, "/props?model=nope")
    assert status == 404 and error["error"]["code"] == 404 and error["error"]["type"] == "not_found_error"


def test_tokenize_and_back(server: Server, tokenizer: ModelTokenizer) -> None:
    text = "Say this is a test"
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert call(server, "/tokenize", {"content": text}) == (200, {"tokens": ids})
    assert call(server, "/tokenize", {"content": text, "add_special": True}) == (200, {"tokens": tokenizer.encode(text, True)})
    status, pieces = call(server, "/tokenize", {"content": text, "with_pieces": True, "model": "tiny"})
    assert status == 200 and [p["id"] for p in pieces["tokens"]] == ids
    assert "".join(p["piece"] for p in pieces["tokens"]) == text
    assert call(server, "/detokenize", {"tokens": ids}) == (200, {"content": text})
    assert call(server, "/tokenize", {}) == (200, {"tokens": []})
    assert call(server, "/detokenize", {}) == (200, {"content": ""})


def test_a_piece_that_is_not_utf8_alone_is_its_bytes(server: Server) -> None:
    status, pieces = call(server, "/tokenize", {"content": "é€😀", "with_pieces": True})
    assert status == 200
    joined = b"".join(p["piece"].encode() if isinstance(p["piece"], str) else bytes(p["piece"]) for p in pieces["tokens"])
    assert joined.decode() == "é€😀"


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/tokenize", {"content": 5}, 400),
        ("/tokenize", {"content": "a", "with_pieces": "yes"}, 400),
        ("/tokenize", {"content": "word " * 200_000}, 400),
        ("/tokenize", {"content": "a", "model": "nope"}, 404),
        ("/detokenize", {"tokens": [2**64]}, 400),
        ("/detokenize", {"tokens": "abc"}, 400),
        ("/detokenize", {"tokens": [10**9]}, 400),
        ("/detokenize", {"tokens": list(range(600))}, 400),
        ("/tokenize", b"garbage", 400),
        ("/tokenize", b"[1]", 400),
    ],
)
def test_hostile_bodies_get_llama_errors(server: Server, path: str, body: Any, status: int) -> None:
    got, error = call(server, path, body)
    assert got == status, error
    assert set(error) == {"error"} and error["error"]["code"] == status and error["error"]["message"], error


def assert_llama_error(status: int, error: Any, expected: int, kind: str) -> None:
    """llama-server's error object (its format_error_response): code, message and type only."""
    assert status == expected, error
    assert set(error) == {"error"} and set(error["error"]) == {"code", "message", "type"}, error
    assert error["error"]["code"] == expected and error["error"]["type"] == kind and error["error"]["message"], error


def test_the_api_key_is_required_and_refused_in_llama_servers_shape(server: Server) -> None:
    assert_llama_error(*get(server, "/props", headers={}), 401, "authentication_error")
    assert_llama_error(*get(server, "/props", headers={"Authorization": "Bearer wrong"}), 401, "authentication_error")
    for path in ("/tokenize", "/detokenize"):
        status, _, reply = post(server, path, {"content": "a"})
        assert_llama_error(status, json.loads(reply), 401, "authentication_error")


def test_health_is_open_as_in_llama_server(server: Server) -> None:
    """llama-server leaves /health open with a key, and so does ovserve by default
    (--api_key_open_paths): probes written for it need no key."""
    assert get(server, "/health", headers={}) == (200, {"status": "ok"})


def test_the_middlewares_refusals_in_llama_servers_shape(server: Server) -> None:
    """404, 405, 413 and 415 on llama.cpp's paths, raised before any handler, in its shape."""
    assert_llama_error(*get(server, "/props/more"), 404, "not_found_error")
    assert_llama_error(*get(server, "/tokenize"), 405, "invalid_request_error")
    status, _, reply = post(server, "/tokenize", b"content=a", {**AUTH, "Content-Type": "text/plain"})
    assert_llama_error(status, json.loads(reply), 415, "invalid_request_error")
    status, _, reply = post(server, "/detokenize", b'{"tokens": [' + b"1," * (9 * 1024 * 1024) + b"1]}", AUTH)
    assert_llama_error(status, json.loads(reply), 413, "invalid_request_error")


def test_metrics_label_each_route(server: Server) -> None:
    call(server, "/tokenize", {"content": "a"})
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("GET", "/metrics", headers=AUTH)
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    assert 'ovserve_http_requests_total{endpoint="/tokenize",model="tiny",status="200"}' in text


class _Loading:
    ready = False


async def test_health_while_loading_is_llama_servers_503() -> None:
    app = web.Application()
    app[SERVABLES] = cast(ServableManager, _Loading())  # what /health reads: nothing loaded yet
    llamacpp.add_routes(app)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/health")
        assert response.status == 503
        assert await response.json() == {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}

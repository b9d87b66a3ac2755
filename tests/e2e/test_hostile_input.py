"""Hostile requests in raw HTTP against a real server (text generation, embeddings, rerank):
every answer is a success or a well-formed 4xx error (OpenAI's shape on /v3 and /v1, KServe's
`{"error": "..."}` on /v2), never a 5xx, and the server still answers correctly afterwards."""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest

from tests.helpers.http import post
from tests.helpers.server import Server
from tests.models import TINY_PROMPTS

CHAT, COMPLETIONS = "/v3/chat/completions", "/v3/completions"
M = [{"role": "user", "content": "hi"}]
INFER = "/v2/models/tiny/infer"


@pytest.fixture(scope="module")
def server(three_servable_server: Server) -> Server:
    """tiny, minilm and reranker (tests/e2e/conftest.py), as the OpenAPI fuzz uses."""
    return three_servable_server


def chat(**fields: Any) -> bytes:
    return json.dumps({"model": "tiny", "messages": M, "max_tokens": 4, **fields}).encode()


def completion(**fields: Any) -> bytes:
    return json.dumps({"model": "tiny", "prompt": "hi", "max_tokens": 4, **fields}).encode()


def nested(depth: int, inner: bytes = b"") -> bytes:
    return b"[" * depth + inner + b"]" * depth


def rf(schema: Any) -> bytes:
    return chat(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})


def text_input(data: bytes) -> bytes:
    return b'{"inputs": [{"name": "text_input", "datatype": "BYTES", "shape": [1], "data": ' + data + b"}]}"


CASES: list[tuple[str, str, bytes]] = [
    ("invalid json", CHAT, b'{"model": "tiny", "messages": ['),
    ("nan literal", CHAT, b'{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}'),
    ("infinity literal", COMPLETIONS, b'{"model": "tiny", "prompt": "hi", "temperature": Infinity}'),
    ("1e400", CHAT, b'{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "temperature": 1e400}'),
    ("invalid utf-8 body", CHAT, b"\xff\xfe{}"),
    ("invalid utf-8 in a string", COMPLETIONS, b'{"model": "tiny", "prompt": "\xc3\x28"}'),
    ("lone surrogate", CHAT, b'{"model": "tiny", "messages": [{"role": "user", "content": "\\ud800"}]}'),
    ("lone surrogate completions", COMPLETIONS, b'{"model": "tiny", "prompt": "\\udfff x", "max_tokens": 2}'),
    ("100k nested arrays", CHAT, nested(100_000)),
    ("100k nested in a field", CHAT, b'{"model": "tiny", "messages": ' + nested(100_000) + b"}"),
    ("deep template kwargs", CHAT, b'{"model": "tiny", "messages": [], "chat_template_kwargs": {"a": ' + nested(5000) + b"}}"),
    ("KServe 100k nested data", INFER, text_input(nested(100_000, b'"hi"'))),
    ("KServe 900 nested data", INFER, text_input(nested(900, b'"hi"'))),
    (
        "KServe output parameters not an object",
        INFER,
        text_input(b'["Say this is a test"], "x": 1').replace(
            b', "x": 1}]}', b'}], "outputs": [{"name": "text_output", "parameters": [1]}]}'
        ),
    ),
    (
        "KServe huge shape",
        INFER,
        b'{"inputs": [{"name": "text_input", "datatype": "BYTES", "shape": [18446744073709551616], "data": ["a"]}]}',
    ),
    (
        "KServe fp16 overflow",
        "/v2/models/minilm/infer",
        b'{"inputs": [{"name": "input", "datatype": "FP16", "shape": [1], "data": [1e308]}]}',
    ),
    (  # issue 23, defect 1: multiplied out as a big integer on the event loop, then a 500
        "KServe 20k huge dimensions",
        INFER,
        b'{"inputs": [{"name": "text_input", "datatype": "BYTES", "shape": ['
        + b", ".join([b"4611686018427387904"] * 20_000)
        + b'], "data": ["a"]}]}',
    ),
    (
        "KServe dimension beyond int64",
        INFER,
        b'{"inputs": [{"name": "text_input", "datatype": "BYTES", "shape": [' + b"9" * 4000 + b'], "data": ["a"]}]}',
    ),
    ("schema: nested repeats over the budget", CHAT, rf({"type": "string", "pattern": "((a|b){150}){150}"})),
    ("tokenize 10 MB", "/v3/tokenize", json.dumps({"model": "tiny", "prompt": "word " * 2_000_000}).encode()),
    ("detokenize 100k ids", "/v3/detokenize", json.dumps({"model": "tiny", "tokens": [1] * 100_000}).encode()),
    ("KServe n huge", INFER, text_input(b'["hi"]').replace(b"}]}", b'}], "parameters": {"n": 1000000000}}')),
    ("wrong types", CHAT, json.dumps({"model": 5, "messages": {"a": 1}, "max_tokens": "x", "stream": "yes"}).encode()),
    ("wrong types 2", CHAT, json.dumps({"model": "tiny", "messages": [{"role": 1, "content": 2}]}).encode()),
    ("max_tokens 0", CHAT, chat(max_tokens=0)),
    ("max_tokens -1", COMPLETIONS, completion(max_tokens=-1)),
    ("max_tokens 2**64", CHAT, chat(max_tokens=2**64)),
    ("max_tokens 1e308", COMPLETIONS, completion(max_tokens=1e308)),
    ("top_k 10**30", CHAT, chat(top_k=10**30)),
    ("min_tokens 2**64", COMPLETIONS, completion(min_tokens=2**64)),
    ("stop_token_ids 2**64", CHAT, chat(stop_token_ids=[2**64])),
    ("seed 2**64", CHAT, chat(seed=2**64)),
    ("seed -1", COMPLETIONS, completion(seed=-1)),
    ("n 10**9", CHAT, chat(n=10**9, temperature=1)),
    ("best_of 10**9", COMPLETIONS, completion(best_of=10**9)),
    ("10k stop strings", CHAT, chat(stop=["x"] * 10_000)),
    ("unknown field", CHAT, chat(frobnicate=1)),
    ("empty messages", CHAT, json.dumps({"model": "tiny", "messages": []}).encode()),
    ("10k messages", CHAT, json.dumps({"model": "tiny", "messages": M * 10_000}).encode()),
    ("1 MB message", CHAT, json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "word " * 200_000}]}).encode()),
    ("1 MB prompt", COMPLETIONS, json.dumps({"model": "tiny", "prompt": "a" * 1_000_000}).encode()),
    ("NUL and control characters", CHAT, chat(messages=[{"role": "user", "content": "a\x00b\x01\x1b[2J"}])),
    ("NUL in the model name", CHAT, json.dumps({"model": "ti\x00ny", "messages": M}).encode()),
    ("template kwargs clash", CHAT, chat(chat_template_kwargs={"messages": 1})),
    (
        "template kwargs clash on tokenize",
        "/v3/tokenize",
        json.dumps({"model": "tiny", "messages": M, "chat_template_kwargs": {"bos_token": 1}}).encode(),
    ),
    ("schema: unknown type", CHAT, rf({"type": "wat"})),
    ("schema: dangling $ref", CHAT, rf({"$ref": "#/nope"})),
    ("schema: minItems without items", CHAT, rf({"type": "array", "minItems": 2})),
    ("schema: look-ahead", CHAT, rf({"type": "string", "pattern": "(?=a)a"})),
    ("schema: empty enum", CHAT, rf({"enum": []})),
    ("schema: min above max", CHAT, rf({"type": "integer", "minimum": 5, "maximum": 1})),
    (
        "forced tool with a bad schema",
        CHAT,
        chat(
            tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": 5}}}}}],
            tool_choice="required",
        ),
    ),
    ("tokenize 1 MB", "/v3/tokenize", json.dumps({"model": "tiny", "prompt": "word " * 200_000}).encode()),
    ("detokenize 2**64", "/v3/detokenize", json.dumps({"model": "tiny", "tokens": [2**64]}).encode()),
    ("detokenize wrong type", "/v3/detokenize", json.dumps({"model": "tiny", "tokens": "abc"}).encode()),
    ("embeddings token 2**64", "/v3/embeddings", json.dumps({"model": "minilm", "input": [2**64]}).encode()),
    ("embeddings 1 MB", "/v3/embeddings", json.dumps({"model": "minilm", "input": "word " * 200_000}).encode()),
    ("embeddings dimensions 2**64", "/v3/embeddings", json.dumps({"model": "minilm", "input": "a", "dimensions": 2**64}).encode()),
    ("rerank 1 MB document", "/v3/rerank", json.dumps({"model": "rerank", "query": "q", "documents": ["word " * 200_000]}).encode()),
    ("rerank top_n 2**64", "/v3/rerank", json.dumps({"model": "rerank", "query": "q", "documents": ["a"], "top_n": 2**64}).encode()),
    ("10 MB body", CHAT, json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "a" * 10_000_000}]}).encode()),
]


def check_answer(path: str, status: int, headers: dict[str, str], body: bytes) -> None:
    assert status < 500, body[:500]
    if status < 400:
        return
    assert headers["Content-Type"].startswith("application/json")
    error = json.loads(body)["error"]
    if path.startswith("/v2"):
        assert isinstance(error, str) and error
    else:
        assert set(error) == {"message", "type", "param", "code"} and error["message"], error


@pytest.mark.parametrize(("path", "body"), [(path, body) for _, path, body in CASES], ids=[name for name, _, _ in CASES])
def test_hostile_body_gets_a_clear_answer(server: Server, path: str, body: bytes) -> None:
    status, headers, reply = post(server, path, body)
    check_answer(path, status, headers, reply)


@pytest.mark.parametrize("path", [CHAT, COMPLETIONS, "/v3/embeddings", "/v3/tokenize", "/v3/detokenize", "/v3/rerank", INFER])
def test_20_mb_body_is_413(server: Server, path: str) -> None:
    status, headers, reply = post(server, path, b'{"model": "tiny", "prompt": "' + b"a" * (20 * 1024 * 1024) + b'"}')
    assert status == 413, reply[:300]
    check_answer(path, status, headers, reply)


@pytest.mark.parametrize("path", [CHAT, COMPLETIONS, "/v3/embeddings", "/v3/tokenize", INFER])
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"])
def test_wrong_content_types(server: Server, path: str, content_type: str) -> None:
    status, headers, reply = post(server, path, b"model=tiny&prompt=hi", headers={"Content-Type": content_type})
    assert 400 <= status < 500
    check_answer(path, status, headers, reply)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", [CHAT, COMPLETIONS, "/v3/embeddings", "/v3/tokenize", "/v3/detokenize", INFER])
def test_methods_not_allowed(server: Server, method: str, path: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request(method, path, body=b"{}")
        response = conn.getresponse()
        status, body = response.status, response.read()
    finally:
        conn.close()
    if (method, path) == ("GET", INFER):  # model names may hold slashes: model metadata of "tiny/infer"
        assert status == 404 and isinstance(json.loads(body)["error"], str), body
        return
    assert status == 405, body
    assert set(json.loads(body)["error"]) == {"message", "type", "param", "code"}


def test_bad_schema_leaves_the_engine_serving(server: Server) -> None:
    for schema in ({"type": "wat"}, {"$ref": "#/x"}, {"type": "array", "minItems": 1}):
        status, _, _ = post(server, CHAT, rf(schema))
        assert status == 400
    status, _, reply = post(server, CHAT, {"model": "tiny", "messages": [{"role": "user", "content": "Say this is a test"}]})
    assert status == 200 and json.loads(reply)["choices"][0]["message"]["content"] == TINY_PROMPTS["Say this is a test"]


def test_server_still_answers_correctly(server: Server) -> None:
    assert server.process.poll() is None
    for prompt, answer in TINY_PROMPTS.items():
        status, _, reply = post(server, CHAT, {"model": "tiny", "messages": [{"role": "user", "content": prompt}]})
        assert status == 200 and json.loads(reply)["choices"][0]["message"]["content"] == answer


def test_schema_over_the_complexity_budget_is_a_400(server: Server) -> None:
    """Issue 23, defect 2: this 20-byte pattern took ~36 s of grammar compilation inside an engine
    step; it is refused before the engine, naming the budget."""
    schema = {"type": "object", "properties": {"a": {"type": "string", "pattern": "((a|b){150}){150}"}}, "required": ["a"]}
    status, _, reply = post(server, CHAT, rf(schema))
    assert status == 400, reply
    error = json.loads(reply)["error"]
    assert "repetition-product budget" in error["message"] and error["param"] == "response_format.json_schema.schema"

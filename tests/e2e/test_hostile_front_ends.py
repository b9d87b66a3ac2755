"""Hostile requests in raw HTTP on the other APIs' routes (Responses, Anthropic, Ollama, Cohere,
llama.cpp's extras), against a real server: each answer is a success or a 4xx in that API's own
error shape (never a 5xx, never another API's shape), and afterwards every route still answers a
good request and the chat route its exact answer. tests/e2e/test_hostile_input.py does the same
for the OpenAI and KServe routes.

The image and audio routes get the hostile bodies refused before any model is looked up (this
server serves none of theirs: unparsable JSON, a JSON body to a form route, 413, 415, 405, an
unknown model); what reaches their engines is in test_images_hostile.py, test_audio_hostile.py and
test_speech_hostile.py."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.helpers.http import post
from tests.helpers.server import Server
from tests.models import TINY_PROMPTS

M = [{"role": "user", "content": "hi"}]


def openai_shape(status: int, body: Any) -> bool:
    return set(body["error"]) == {"message", "type", "param", "code"} and bool(body["error"]["message"])


def anthropic_shape(status: int, body: Any) -> bool:
    return body["type"] == "error" and isinstance(body["error"]["type"], str) and bool(body["error"]["message"])


def ollama_shape(status: int, body: Any) -> bool:
    return set(body) == {"error"} and isinstance(body["error"], str) and bool(body["error"])


def cohere_shape(status: int, body: Any) -> bool:
    return isinstance(body["message"], str) and bool(body["message"])


def llamacpp_shape(status: int, body: Any) -> bool:
    return body["error"]["code"] == status and bool(body["error"]["message"]) and isinstance(body["error"]["type"], str)


@dataclass(frozen=True)
class Route:
    path: str
    good: dict[str, Any]  # a request the route answers with a 2xx
    text: str  # the field holding the request's free text (for hostile strings)
    numbers: tuple[str, ...]  # integer fields (top level, or "options.x")
    shape: Callable[[int, Any], bool]


ROUTES = [
    Route("/v3/responses", {"model": "tiny", "input": "hi", "max_output_tokens": 4}, "input", ("max_output_tokens",), openai_shape),
    Route("/v1/messages", {"model": "tiny", "max_tokens": 4, "messages": M}, "system", ("max_tokens", "top_k"), anthropic_shape),
    Route("/v1/messages/count_tokens", {"model": "tiny", "messages": M}, "system", (), anthropic_shape),
    Route(
        "/api/chat",
        {"model": "tiny", "messages": M, "stream": False, "options": {"num_predict": 4}},
        "system",
        ("options.num_predict", "options.seed", "options.top_k"),
        ollama_shape,
    ),
    Route(
        "/api/generate",
        {"model": "tiny", "prompt": "hi", "stream": False, "options": {"num_predict": 4}},
        "prompt",
        ("options.num_predict", "options.num_ctx"),
        ollama_shape,
    ),
    Route("/api/embed", {"model": "minilm", "input": "hi"}, "input", ("dimensions",), ollama_shape),
    Route("/api/show", {"model": "tiny"}, "model", (), ollama_shape),
    Route("/v2/rerank", {"model": "rerank", "query": "q", "documents": ["a", "b"]}, "query", ("top_n",), cohere_shape),
    Route("/v1/rerank", {"model": "rerank", "query": "q", "documents": ["a"]}, "query", ("top_n",), cohere_shape),
    Route("/tokenize", {"content": "hi"}, "content", (), llamacpp_shape),
    Route("/detokenize", {"tokens": [1, 2]}, "model", (), llamacpp_shape),
]
IDS = [route.path for route in ROUTES]


def with_value(body: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    """`body` with `field` (or "parent.child") set to `value`."""
    out = json.loads(json.dumps(body))
    parent, _, child = field.rpartition(".")
    (out.setdefault(parent, {}) if parent else out)[child] = value
    return out


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def hostile_bodies(route: Route) -> list[tuple[str, bytes]]:
    good = json.dumps(route.good).encode()
    cases: list[tuple[str, Any]] = [
        ("truncated json", good[:-3]),
        ("not an object", b"[1, 2]"),
        ("null", b"null"),
        ("nan literal", good[:-1] + b', "temperature": NaN}'),
        ("invalid utf-8", b"\xff\xfe" + good),
        ("100k nested arrays", nested(100_000)),
        ("100k nested in a field", good[:-1] + b', "x": ' + nested(100_000) + b"}"),
        ("lone surrogate", json.dumps(with_value(route.good, route.text, "\ud800 x")).encode()),
        ("NUL and control characters", with_value(route.good, route.text, "a\x00b\x1b[2J")),
        ("1 MB text", with_value(route.good, route.text, "word " * 200_000)),
        ("object for text", with_value(route.good, route.text, {"a": [1]})),
        ("unknown model", with_value(route.good, "model", "nope")),
        ("NUL in the model name", with_value(route.good, "model", "ti\x00ny")),
        ("model not a string", with_value(route.good, "model", 5)),
        ("every field an object", {key: {"a": 1} for key in route.good}),
    ]
    for number in route.numbers:
        cases += [(f"{number} 2**64", with_value(route.good, number, 2**64)), (f"{number} -1", with_value(route.good, number, -1))]
        cases.append((f"{number} a string", with_value(route.good, number, "x")))
    return [(name, body if isinstance(body, bytes) else json.dumps(body).encode()) for name, body in cases]


CASES = [(route, name, body) for route in ROUTES for name, body in hostile_bodies(route)]


# The image and audio routes: JSON bodies (their good ones name models this server lacks) and forms.
MEDIA_JSON = [
    Route("/v3/images/generations", {"model": "sd", "prompt": "a cat"}, "prompt", ("n",), openai_shape),
    Route("/v3/audio/speech", {"model": "speech", "input": "hi"}, "input", ("speed",), openai_shape),
]
MEDIA_FORMS = ("/v3/images/edits", "/v3/audio/transcriptions", "/v3/audio/translations")
MEDIA_PATHS = (*[route.path for route in MEDIA_JSON], *MEDIA_FORMS)
# hostile_bodies' cases that fail before the model is looked up: a 400 each
UNPARSABLE = ("truncated json", "not an object", "null", "nan literal", "invalid utf-8", "100k nested arrays", "100k nested in a field")
MEDIA_CASES = [(route, name, body) for route in MEDIA_JSON for name, body in hostile_bodies(route) if name in UNPARSABLE]


def multipart(fields: dict[str, str], file: tuple[str, bytes]) -> tuple[bytes, dict[str, str]]:
    boundary = "hostile-boundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]
    name, data = file
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="x"\r\n\r\n'.encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


@pytest.fixture(scope="module")
def server(three_servable_server: Server) -> Server:
    """tiny, minilm and rerank (tests/e2e/conftest.py), as the OpenAI hostile tests use."""
    return three_servable_server


def check_answer(route: Route, status: int, headers: dict[str, str], body: bytes) -> None:
    assert status < 500, body[:500]
    if status < 400:
        return
    assert headers["Content-Type"].startswith("application/json"), headers
    answer = json.loads(body)
    assert route.shape(status, answer), answer


@pytest.mark.parametrize(("route", "body"), [(r, b) for r, _, b in CASES], ids=[f"{r.path} {n}" for r, n, _ in CASES])
def test_hostile_body_gets_an_answer_in_the_apis_shape(server: Server, route: Route, body: bytes) -> None:
    status, headers, reply = post(server, route.path, body)
    check_answer(route, status, headers, reply)


#: llama.cpp's /tokenize and /detokenize name no model (llama-server serves one); a named unknown
#: one is a 404 there too (tests/e2e/test_llamacpp_api.py).
NAMED = [route for route in ROUTES if route.path not in ("/tokenize", "/detokenize")]


@pytest.mark.parametrize("route", NAMED, ids=[route.path for route in NAMED])
def test_unknown_model_is_404(server: Server, route: Route) -> None:
    status, headers, reply = post(server, route.path, with_value(route.good, "model", "nope"))
    assert status == 404, reply
    check_answer(route, status, headers, reply)


@pytest.mark.parametrize("route", ROUTES, ids=IDS)
def test_20_mb_body_is_413_in_the_apis_shape(server: Server, route: Route) -> None:
    status, headers, reply = post(server, route.path, b'{"model": "tiny", "prompt": "' + b"a" * (20 * 1024 * 1024) + b'"}')
    assert status == 413, reply[:300]
    check_answer(route, status, headers, reply)


@pytest.mark.parametrize("route", ROUTES, ids=IDS)
def test_wrong_content_type_is_415_in_the_apis_shape(server: Server, route: Route) -> None:
    status, headers, reply = post(server, route.path, b"model=tiny", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415, reply
    check_answer(route, status, headers, reply)


@pytest.mark.parametrize("route", ROUTES, ids=IDS)
def test_wrong_method_is_405_in_the_apis_shape(server: Server, route: Route) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("PUT", route.path, body=b"{}")
        response = conn.getresponse()
        status, headers, reply = response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()
    assert status == 405, reply
    check_answer(route, status, headers, reply)


@pytest.mark.parametrize("route", ROUTES, ids=IDS)
def test_every_route_still_answers(server: Server, route: Route) -> None:
    assert server.process.poll() is None
    status, _, reply = post(server, route.path, route.good)
    assert status == 200, reply[:500]


@pytest.mark.parametrize(("route", "body"), [(r, b) for r, _, b in MEDIA_CASES], ids=[f"{r.path} {n}" for r, n, _ in MEDIA_CASES])
def test_media_json_route_refuses_an_unparsable_body(server: Server, route: Route, body: bytes) -> None:
    status, headers, reply = post(server, route.path, body)
    assert status == 400, reply[:300]
    check_answer(route, status, headers, reply)


@pytest.mark.parametrize("path", MEDIA_FORMS)
def test_media_form_route_refuses_json_as_415(server: Server, path: str) -> None:
    status, headers, reply = post(server, path, {"model": "whisper", "file": "speech.wav"})
    assert status == 415 and b"multipart/form-data" in reply, reply
    check_answer(MEDIA_JSON[0], status, headers, reply)


def chunked(server: Server, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """POST `body` without a Content-Length (chunked), so the server learns its size only by reading."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        pieces = iter([body[i : i + 65536] for i in range(0, len(body), 65536)])
        conn.request("POST", path, body=pieces, headers=headers, encode_chunked=True)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


# A 20 MB body with no form in it: over --max_request_size (16 MB) a 413 where that bounds the body,
# a 400 on the audio routes (their bound is the file's, --max_audio_bytes 25 MB, and there is no file).
BIG_BODY_STATUS = {"/v3/audio/transcriptions": 400, "/v3/audio/translations": 400}


@pytest.mark.parametrize("path", MEDIA_PATHS)
def test_media_route_refusals_before_the_engine(server: Server, path: str) -> None:
    """An unknown model 404, a 20 MB body 413 (or 400), a urlencoded body 415, PUT 405; a form
    route's 20 MB chunked body without a boundary or a field name with a control character 400:
    OpenAI's shape each."""
    big = b'{"model": "nope", "prompt": "' + b"a" * (20 * 1024 * 1024) + b'"}'
    if path in MEDIA_FORMS:
        body, headers = multipart({"model": "nope", "prompt": "a cat"}, ("image" if "images" in path else "file", b"\x00" * 64))
    else:
        body, headers = json.dumps({"model": "nope", "prompt": "a cat", "input": "hi"}).encode(), {}
    answers = [(404, post(server, path, body, headers))]
    answers.append((BIG_BODY_STATUS.get(path, 413), post(server, path, big, headers)))
    if path in MEDIA_FORMS:
        answers.append((400, chunked(server, path, big, headers)))
        control = multipart({"\x19~": "x", "model": "nope"}, ("file", b"\x00"))  # a part header aiohttp refuses
        answers.append((400, post(server, path, *control)))
    answers.append((415, post(server, path, b"model=nope", headers={"Content-Type": "application/x-www-form-urlencoded"})))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("PUT", path, body=b"{}")
        response = conn.getresponse()
        answers.append((405, (response.status, dict(response.getheaders()), response.read())))
    finally:
        conn.close()
    for expected, (status, reply_headers, reply) in answers:
        assert status == expected, (expected, reply[:300])
        check_answer(MEDIA_JSON[0], status, reply_headers, reply)


def test_chat_still_answers_exactly(server: Server) -> None:
    for prompt, answer in TINY_PROMPTS.items():
        status, _, reply = post(
            server, "/v1/messages", {"model": "tiny", "max_tokens": 200, "messages": [{"role": "user", "content": prompt}]}
        )
        assert status == 200 and json.loads(reply)["content"][0]["text"] == answer

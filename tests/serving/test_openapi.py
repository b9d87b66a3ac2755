"""The /openapi.json document (serving/openapi.py, serving/openapi_frontends.py): every front end's
routes are in it, schemathesis reads it (tests/e2e/test_fuzz_openapi.py fuzzes it), and each route
documents its own API's error shape and streaming media type."""

from __future__ import annotations

import schemathesis
from schemathesis.core.result import Ok

from serving.openapi import build_document
from serving.openapi_frontends import ANTHROPIC_ERROR, COHERE_ERROR, FORM, LLAMA_ERROR, NDJSON, OLLAMA_ERROR, SSE

DOCUMENT = build_document()
PATHS = DOCUMENT["paths"]


MEDIA_ROUTES = ("images/generations", "images/edits", "audio/transcriptions", "audio/translations", "audio/speech")


def test_every_front_ends_routes_are_described() -> None:
    expected = {
        "/v3/responses": {"post"},
        "/v3/responses/{response_id}": {"get", "delete"},
        "/v1/messages": {"post"},
        "/v1/messages/count_tokens": {"post"},
        **{f"/api/{name}": {"post"} for name in ("chat", "generate", "embed", "show")},
        **{f"/api/{name}": {"get"} for name in ("tags", "ps", "version")},
        "/v1/rerank": {"post"},
        "/v2/rerank": {"post"},
        "/v3/v2/rerank": {"post"},
        "/health": {"get"},
        "/props": {"get"},
        "/tokenize": {"post"},
        "/detokenize": {"post"},
        **{f"{prefix}/{path}": {"post"} for prefix in ("/v3", "/v1") for path in MEDIA_ROUTES},
    }
    expected.update({f"{prefix}/images/files/{{image_id}}.png": {"get"} for prefix in ("/v3", "/v1")})
    for path, methods in expected.items():
        assert set(PATHS[path]) == methods, path


def test_schemathesis_reads_every_operation() -> None:
    results = list(schemathesis.openapi.from_dict(DOCUMENT).get_all_operations())
    assert all(isinstance(result, Ok) for result in results)
    assert len(results) == sum(len(item) for item in PATHS.values())


def error_schema(path: str, method: str, status: str) -> object:
    return PATHS[path][method]["responses"][status]["content"]["application/json"]["schema"]


def test_each_api_documents_its_error_shape() -> None:
    assert error_schema("/v1/messages", "post", "400") == ANTHROPIC_ERROR
    assert error_schema("/v1/messages", "post", "401") == ANTHROPIC_ERROR  # the middlewares answer in its shape too
    assert error_schema("/api/chat", "post", "404") == OLLAMA_ERROR
    assert error_schema("/v2/rerank", "post", "404") == COHERE_ERROR
    assert error_schema("/tokenize", "post", "400") == LLAMA_ERROR
    assert error_schema("/v3/responses", "post", "400") == {"$ref": "#/components/schemas/Error"}


def test_streams_and_request_models() -> None:
    assert SSE in PATHS["/v1/messages"]["post"]["responses"]["200"]["content"]
    assert NDJSON in PATHS["/api/generate"]["post"]["responses"]["200"]["content"]
    body = PATHS["/v3/responses"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ResponsesRequest"}
    assert "max_tokens" in DOCUMENT["components"]["schemas"]["MessagesRequest"]["required"]


def body_schema(path: str, media_type: str) -> dict:
    content = PATHS[path]["post"]["requestBody"]["content"]
    assert list(content) == [media_type], content
    return content[media_type]["schema"]


def answer_types(path: str) -> set[str]:
    return set(PATHS[path]["post"]["responses"]["200"]["content"])


def test_image_and_audio_routes_bodies_and_answers() -> None:
    generation = body_schema("/v3/images/generations", "application/json")
    assert {"model", "prompt"} <= set(generation["required"]) and "image" not in generation["properties"]
    edit = body_schema("/v3/images/edits", FORM)
    assert {"prompt", "image"} <= set(edit["required"])
    assert edit["properties"]["image"] == edit["properties"]["mask"] == {"type": "string", "contentMediaType": "application/octet-stream"}
    assert edit["properties"]["n"] == {"minimum": 1, "type": "integer"}  # a form sends no null: that alternative is gone
    for path in ("/v3/audio/transcriptions", "/v3/audio/translations"):
        form = body_schema(path, FORM)
        assert set(form["required"]) == {"model", "file"} and form["properties"]["file"]["contentMediaType"] == "application/octet-stream"
        assert answer_types(path) == {"application/json", "text/plain", "text/vtt", SSE}
    assert "timestamp_granularities[]" in body_schema("/v3/audio/transcriptions", FORM)["properties"]
    speech = body_schema("/v3/audio/speech", "application/json")
    assert set(speech["required"]) == {"model", "input"}
    assert speech["properties"]["response_format"] == {"enum": ["wav", "pcm", "flac", "mp3", "opus"]}
    assert answer_types("/v3/audio/speech") == {"audio/wav", "audio/pcm", "audio/flac", "audio/mpeg", "audio/ogg"}
    assert answer_types("/v3/images/edits") == {"application/json"}
    assert "url" in generation["properties"]["response_format"]["anyOf"][0]["enum"]
    image_file = PATHS["/v3/images/files/{image_id}.png"]["get"]
    assert set(image_file["responses"]["200"]["content"]) == {"image/png"}
    assert image_file["parameters"][0]["name"] == "image_id" and "url" in PATHS["/v3/images/generations"]["post"]["summary"]
    for path in ("/v3/images/generations", "/v3/images/edits"):
        item = PATHS[path]["post"]["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["data"]["items"]
        assert [set(choice["required"]) for choice in item["oneOf"]] == [{"b64_json"}, {"url"}]
    assert error_schema("/v3/images/files/{image_id}.png", "get", "404") == {"$ref": "#/components/schemas/Error"}
    assert error_schema("/v3/audio/speech", "post", "400") == {"$ref": "#/components/schemas/Error"}

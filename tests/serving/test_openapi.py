"""The /openapi.json document (serving/openapi.py, serving/openapi_frontends.py): every front end's
routes are in it, schemathesis reads it (tests/e2e/test_fuzz_openapi.py fuzzes it), and each route
documents its own API's error shape and streaming media type."""

from __future__ import annotations

import schemathesis
from schemathesis.core.result import Ok

from serving.openapi import build_document
from serving.openapi_frontends import ANTHROPIC_ERROR, COHERE_ERROR, LLAMA_ERROR, NDJSON, OLLAMA_ERROR, SSE

DOCUMENT = build_document()
PATHS = DOCUMENT["paths"]


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
    }
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

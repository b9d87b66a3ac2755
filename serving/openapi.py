"""`GET /openapi.json`: an OpenAPI 3.1 description of the REST API, built from the pydantic
models that validate the requests (so it cannot drift from what the server accepts)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from calculators.embeddings.protocol import EmbeddingsRequest
from calculators.openai.protocol import ChatCompletionRequest, CompletionRequest
from calculators.openai.tokenize import Detokenize, TokenizeChat, TokenizeCompletion
from calculators.rerank.calculator import RerankRequest
from serving.openapi_frontends import Route, routes

_JSON = "application/json"
_ERROR = {"$ref": "#/components/schemas/Error"}
_OBJECT: dict[str, Any] = {"type": "object"}
_ERRORS = {
    "400": "invalid request",
    "401": "missing or wrong API key (with --api_key)",
    "403": "Host not in --allowed_hosts, or a cross-origin request from an origin not in --allowed_origins",
    "404": "unknown model or route",
    "405": "method not allowed",
    "413": "request body too large",
    "415": "request body not sent as application/json",
    "429": "too many requests",
    "503": "loading, draining or overloaded",
}
_KSERVE_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}


def _error_schema() -> dict[str, Any]:
    detail = {
        "type": "object",
        "properties": {
            "message": {"type": "string"},
            "type": {"type": "string"},
            "param": {"type": ["string", "null"]},
            "code": {"type": ["string", "null"]},
        },
        "required": ["message", "type", "param", "code"],
    }
    return {"type": "object", "properties": {"error": detail}, "required": ["error"]}


def _responses(
    ok: dict[str, Any], error: dict[str, Any] = _ERROR, stream: bool | str = False, own_refusals: bool = False
) -> dict[str, Any]:
    content: dict[str, Any] = {_JSON: {"schema": ok}}
    if stream:
        content["text/event-stream" if stream is True else stream] = {"schema": {"type": "string"}}
    responses: dict[str, Any] = {"200": {"description": "success", "content": content}}
    for status, what in _ERRORS.items():
        # 401 and 405 come from the middlewares, in OpenAI's shape unless the path registered its own
        shape = _ERROR if status in ("401", "405") and not own_refusals else error
        responses[status] = {"description": what, "content": {_JSON: {"schema": shape}}}
    return responses


def _operation(summary: str, body: dict[str, Any] | None = None, stream: bool = False, **extra: Any) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": _responses(_OBJECT, stream=stream), **extra}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {_JSON: {"schema": body}}}
    return operation


def _path_parameter(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}


def _route_operation(route: Route, ref: Callable[[type[BaseModel]], dict[str, Any]]) -> dict[str, Any]:
    """Another API's operation (serving.openapi_frontends): its own error shape and stream type."""
    responses = _responses(route.answer or _OBJECT, route.error, route.stream or False, route.own_refusals)
    ok = responses["200"]["content"]
    ok.update({media: {"schema": {"type": "string"}} for media in route.answers})  # text or audio
    if not route.json_answer:
        del ok[_JSON]
    operation: dict[str, Any] = {"summary": route.summary, "responses": responses}
    if route.parameters:
        operation["parameters"] = route.parameters
    if route.body is not None:
        schema = ref(route.body) if isinstance(route.body, type) else route.body
        operation["requestBody"] = {"required": True, "content": {route.body_type: {"schema": schema}}}
    return operation


def build_document() -> dict[str, Any]:
    schemas: dict[str, Any] = {"Error": _error_schema()}

    def ref(model: type[BaseModel]) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    openai_paths: dict[str, Any] = {
        "/chat/completions": {"post": _operation("Chat completion (JSON, or SSE with stream: true)", ref(ChatCompletionRequest), True)},
        "/completions": {"post": _operation("Text completion (JSON, or SSE with stream: true)", ref(CompletionRequest), True)},
        "/embeddings": {"post": _operation("Embeddings", ref(EmbeddingsRequest))},
        "/rerank": {"post": _operation("Rerank documents against a query", ref(RerankRequest))},
        "/tokenize": {"post": _operation("Token ids of a prompt or chat", {"anyOf": [ref(TokenizeCompletion), ref(TokenizeChat)]})},
        "/detokenize": {"post": _operation("Text of token ids", ref(Detokenize))},
        "/models": {"get": _operation("Models served")},
        "/models/{model}": {"get": _operation("One model", parameters=[_path_parameter("model")])},
    }
    paths = {f"{prefix}{path}": item for prefix in ("/v3", "/v1") for path, item in openai_paths.items()}
    del paths["/v1/rerank"]  # Cohere's API there (serving.cohere)
    kserve = {"responses": _responses(_OBJECT, _KSERVE_ERROR)}
    infer_body = {"type": "object", "properties": {"inputs": {"type": "array", "items": _OBJECT}}, "required": ["inputs"]}
    paths.update(
        {
            "/v1/config": {"get": _operation("Servables and their state (OVMS)")},
            "/v2": {"get": {"summary": "KServe server metadata", **kserve}},
            "/v2/health/live": {"get": {"summary": "Liveness", "responses": {"200": {"description": "live"}}}},
            "/v2/health/ready": {
                "get": {"summary": "Readiness", "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}}}
            },
            "/v2/models/{name}": {"get": {"summary": "KServe model metadata", "parameters": [_path_parameter("name")], **kserve}},
            "/v2/models/{name}/ready": {"get": {"summary": "KServe model readiness", "parameters": [_path_parameter("name")], **kserve}},
            "/v2/models/{name}/infer": {
                "post": {
                    "summary": "KServe inference (JSON; the binary tensor extension is not described here)",
                    "parameters": [_path_parameter("name")],
                    "requestBody": {"required": True, "content": {_JSON: {"schema": infer_body}}},
                    **kserve,
                }
            },
        }
    )
    for route in routes():
        paths.setdefault(route.path, {})[route.method] = _route_operation(route, ref)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ovserve",
            "version": "0.1.0",
            "description": "OpenAI (/v3, /v1; images and audio too), KServe v2 (/v2), Anthropic, Ollama, Cohere and llama.cpp REST APIs",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "with --api_key"}},
        },
    }


def install(app: web.Application) -> None:
    document = build_document()  # built once: the models do not change while serving

    async def openapi_json(request: web.Request) -> web.Response:
        return web.json_response(document)

    app.router.add_get("/openapi.json", openapi_json)

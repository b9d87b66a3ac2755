"""The other APIs' routes in `/openapi.json` (serving.openapi builds the document from these):
OpenAI's Responses API, Anthropic's Messages, Ollama's native API, Cohere's rerank and llama.cpp's
extras, each with its own error shape and streaming media type.

Request bodies come from the pydantic models that validate them where the front end has one
(Responses, Anthropic); the others check their bodies by hand (Ollama, Cohere, llama.cpp), so
their schemas here are written out, with the fields and types those checks accept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from serving.anthropic_protocol import CountTokensRequest, MessagesRequest
from serving.responses.request import ResponsesRequest

Schema = dict[str, Any]
SSE = "text/event-stream"
NDJSON = "application/x-ndjson"

_STRING: Schema = {"type": "string"}
_INT: Schema = {"type": "integer"}
_NUMBER: Schema = {"type": "number"}
_BOOL: Schema = {"type": "boolean"}
_STRINGS: Schema = {"type": "array", "items": _STRING}
_MODEL: Schema = {"type": "string", "minLength": 1}

# Each API's error body.
OPENAI_ERROR: Schema = {"$ref": "#/components/schemas/Error"}
ANTHROPIC_ERROR: Schema = {
    "type": "object",
    "properties": {
        "type": {"const": "error"},
        "error": {"type": "object", "properties": {"type": _STRING, "message": _STRING}, "required": ["type", "message"]},
    },
    "required": ["type", "error"],
}
OLLAMA_ERROR: Schema = {"type": "object", "properties": {"error": _STRING}, "required": ["error"]}
COHERE_ERROR: Schema = {"type": "object", "properties": {"message": _STRING}, "required": ["message"]}
LLAMA_ERROR: Schema = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": _INT, "message": _STRING, "type": _STRING},
            "required": ["code", "message", "type"],
        }
    },
    "required": ["error"],
}


def _object(properties: Schema, required: tuple[str, ...] = ()) -> Schema:
    return {"type": "object", "properties": properties, "required": list(required)}


_OLLAMA_OPTIONS = _object(
    {
        "temperature": _NUMBER,
        "top_k": _INT,
        "top_p": _NUMBER,
        "min_p": _NUMBER,
        "num_predict": _INT,
        "stop": _STRINGS,
        "seed": _INT,
        "presence_penalty": _NUMBER,
        "frequency_penalty": _NUMBER,
        "repeat_penalty": _NUMBER,
        "num_ctx": _INT,
    }
)
_OLLAMA_FORMAT: Schema = {"anyOf": [{"const": "json"}, {"type": "object"}]}
_OLLAMA_THINK: Schema = {"anyOf": [_BOOL, {"enum": ["low", "medium", "high"]}]}
_OLLAMA_CALL = _object({"function": _object({"name": _STRING, "arguments": {"type": "object"}}, ("name",))})
_OLLAMA_MESSAGE = _object(
    {
        "role": {"enum": ["system", "user", "assistant", "tool"]},
        "content": _STRING,
        "images": _STRINGS,
        "thinking": _STRING,
        "tool_name": _STRING,
        "tool_calls": {
            "type": "array",
            "items": _object({"function": _object({"name": _STRING, "arguments": {"type": "object"}}, ("name",))}),
        },
    },
    ("role",),
)
OLLAMA_CHAT = _object(
    {
        "model": _MODEL,
        "messages": {"type": "array", "items": _OLLAMA_MESSAGE},
        "tools": {"type": "array", "items": {"type": "object"}},
        "format": _OLLAMA_FORMAT,
        "options": _OLLAMA_OPTIONS,
        "think": _OLLAMA_THINK,
        "stream": _BOOL,
        "keep_alive": {"anyOf": [_STRING, _NUMBER]},
    },
    ("model",),
)
OLLAMA_GENERATE = _object(
    {
        "model": _MODEL,
        "prompt": _STRING,
        "system": _STRING,
        "images": _STRINGS,
        "raw": _BOOL,
        "format": _OLLAMA_FORMAT,
        "options": _OLLAMA_OPTIONS,
        "think": _OLLAMA_THINK,
        "stream": _BOOL,
    },
    ("model",),
)
OLLAMA_EMBED = _object(
    {"model": _MODEL, "input": {"anyOf": [_STRING, _STRINGS]}, "dimensions": _INT, "truncate": _BOOL}, ("model", "input")
)
OLLAMA_SHOW = _object({"model": _MODEL, "verbose": _BOOL}, ("model",))

_RERANK_COMMON: Schema = {"model": _MODEL, "query": _STRING, "top_n": {"type": "integer", "minimum": 1}}
COHERE_V1 = _object(
    {
        **_RERANK_COMMON,
        "documents": {"type": "array", "items": {"anyOf": [_STRING, _object({"text": _STRING}, ("text",))]}},
        "return_documents": _BOOL,
        "rank_fields": {"type": "array", "items": {"const": "text"}},
        "max_chunks_per_doc": {"type": "integer", "minimum": 1},
    },
    ("model", "query", "documents"),
)
COHERE_V2 = _object(
    {**_RERANK_COMMON, "documents": _STRINGS, "max_tokens_per_doc": {"type": "integer", "minimum": 1}, "priority": _INT},
    ("model", "query", "documents"),
)

LLAMA_TOKENIZE = _object({"content": _STRING, "add_special": _BOOL, "with_pieces": _BOOL, "model": _MODEL})
LLAMA_DETOKENIZE = _object({"tokens": {"type": "array", "items": {"type": "integer", "minimum": 0}}, "model": _MODEL})


@dataclass(frozen=True)
class Route:
    """One operation: its body (a model, a schema or none), error shape and streaming type."""

    path: str
    method: str
    summary: str
    error: Schema
    body: type[BaseModel] | Schema | None = None
    stream: str | None = None  # the media type of a streamed answer
    parameters: list[Schema] = field(default_factory=list)
    # whether the middlewares' refusals (401, 405, 415) take the route's shape (serving.guards.ERROR_SHAPES)
    own_refusals: bool = False


def _path_parameter(name: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}


_MODEL_QUERY = {"name": "model", "in": "query", "required": False, "schema": _MODEL}


def routes() -> list[Route]:
    responses = [
        Route(f"{prefix}/responses", "post", "Responses API (JSON, or SSE with stream: true)", OPENAI_ERROR, ResponsesRequest, SSE)
        for prefix in ("/v3", "/v1")
    ]
    by_id = [_path_parameter("response_id")]
    for prefix in ("/v3", "/v1"):
        responses.append(Route(f"{prefix}/responses/{{response_id}}", "get", "A stored response", OPENAI_ERROR, parameters=by_id))
        responses.append(Route(f"{prefix}/responses/{{response_id}}", "delete", "Delete a stored response", OPENAI_ERROR, parameters=by_id))
    anthropic = [
        Route(
            "/v1/messages",
            "post",
            "Anthropic Messages (JSON, or SSE)",
            ANTHROPIC_ERROR,
            MessagesRequest,
            SSE,
            own_refusals=True,
        ),
        Route("/v1/messages/count_tokens", "post", "Anthropic token count", ANTHROPIC_ERROR, CountTokensRequest, own_refusals=True),
    ]
    ollama = [
        Route("/api/chat", "post", "Ollama chat (NDJSON, or JSON)", OLLAMA_ERROR, OLLAMA_CHAT, NDJSON, own_refusals=True),
        Route(
            "/api/generate",
            "post",
            "Ollama generate (NDJSON, or JSON)",
            OLLAMA_ERROR,
            OLLAMA_GENERATE,
            NDJSON,
            own_refusals=True,
        ),
        Route("/api/embed", "post", "Ollama embeddings", OLLAMA_ERROR, OLLAMA_EMBED, own_refusals=True),
        Route("/api/show", "post", "Ollama model details", OLLAMA_ERROR, OLLAMA_SHOW, own_refusals=True),
        Route("/api/tags", "get", "Ollama: models served", OLLAMA_ERROR, own_refusals=True),
        Route("/api/ps", "get", "Ollama: models loaded", OLLAMA_ERROR, own_refusals=True),
        Route("/api/version", "get", "Ollama API version", OLLAMA_ERROR, own_refusals=True),
    ]
    cohere = [
        Route(f"{prefix}/v{v}/rerank", "post", f"Cohere rerank v{v}", COHERE_ERROR, body, own_refusals=True)
        for prefix in ("", "/v3")
        for v, body in (("1", COHERE_V1), ("2", COHERE_V2))
    ]
    llama = [
        Route("/health", "get", "llama.cpp health: 200 once every servable has loaded", LLAMA_ERROR, own_refusals=True),
        Route("/props", "get", "llama.cpp model properties", LLAMA_ERROR, parameters=[_MODEL_QUERY], own_refusals=True),
        Route("/tokenize", "post", "llama.cpp tokenize", LLAMA_ERROR, LLAMA_TOKENIZE, own_refusals=True),
        Route("/detokenize", "post", "llama.cpp detokenize", LLAMA_ERROR, LLAMA_DETOKENIZE, own_refusals=True),
    ]
    return [*responses, *anthropic, *ollama, *cohere, *llama]

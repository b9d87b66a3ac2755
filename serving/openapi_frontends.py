"""The other APIs' routes in `/openapi.json` (serving.openapi builds the document from these):
OpenAI's Responses API, images and audio, Anthropic's Messages, Ollama's native API, Cohere's
rerank and llama.cpp's extras, each with its own error shape, body and answer media types.

Request bodies come from the pydantic models that validate them where the front end has one
(Responses, Anthropic, images, transcriptions); the others check their bodies by hand (Ollama,
Cohere, llama.cpp, speech), so their schemas here are written out, with the fields and types those
checks accept. Multipart forms carry text fields and file parts (`contentMediaType`
application/octet-stream, as OpenAPI 3.1 spells a file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from calculators.audio.protocol import TranscriptionForm, TranslationForm
from calculators.audio.speech_encode import MEDIA_TYPES as SPEECH_MEDIA_TYPES
from calculators.audio.speech_protocol import FORMATS as SPEECH_FORMATS
from calculators.image.request import ImageRequest
from serving.anthropic_protocol import CountTokensRequest, MessagesRequest
from serving.responses.request import ResponsesRequest

Schema = dict[str, Any]
SSE = "text/event-stream"
NDJSON = "application/x-ndjson"
JSON = "application/json"
FORM = "multipart/form-data"

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

_FILE: Schema = {"type": "string", "contentMediaType": "application/octet-stream"}


def _form_field(schema: Schema) -> Schema:
    """A pydantic field's schema as a form field: no null alternative (a form cannot send null)."""
    alternatives = [a for a in schema.get("anyOf", ()) if a != {"type": "null"}]
    if len(alternatives) == 1:
        return alternatives[0]
    return {k: v for k, v in schema.items() if k not in ("default", "title")}


def _model_schema(model: type[BaseModel], files: tuple[str, ...], form: bool) -> Schema:
    """`model`'s schema with its file fields (arbitrary types) as file parts, or without them in JSON."""
    schema = model.model_json_schema(by_alias=True)
    properties = {}
    for name, field_schema in schema["properties"].items():
        if name in files:
            if form:
                properties[name] = _FILE
        else:
            properties[name] = _form_field(field_schema) if form else field_schema
    required = [name for name in schema.get("required", ()) if name in properties]
    body: Schema = {"type": "object", "properties": properties, "required": required}
    if schema.get("additionalProperties"):
        body["additionalProperties"] = True
    return body


IMAGE_GENERATION = _model_schema(ImageRequest, ("image", "mask"), form=False)
IMAGE_EDIT = _model_schema(ImageRequest, ("image", "mask"), form=True)
IMAGE_EDIT["required"] = [*IMAGE_EDIT["required"], "image"]
TRANSCRIPTION = _model_schema(TranscriptionForm, ("file",), form=True)
TRANSLATION = _model_schema(TranslationForm, ("file",), form=True)
# What calculators/audio/speech_protocol.py checks by hand.
SPEECH = _object(
    {
        "model": _MODEL,
        "input": {"type": "string", "minLength": 1},
        "voice": _STRING,
        "response_format": {"enum": list(SPEECH_FORMATS)},
        "speed": _NUMBER,
        "instructions": _STRING,
        "stream_format": {"enum": ["audio"]},
        "language": _STRING,
    },
    ("model", "input"),
)
# The images answer: each image as base64 PNG, or (response_format url) an absolute URL to GET.
IMAGES_ANSWER = _object(
    {
        "created": _INT,
        "data": {
            "type": "array",
            "items": {
                "oneOf": [_object({"b64_json": _STRING}, ("b64_json",)), _object({"url": {"type": "string", "format": "uri"}}, ("url",))]
            },
        },
        "output_format": {"const": "png"},
        "size": _STRING,
    },
    ("created", "data"),
)

# A transcript answers as JSON (json, verbose_json), text (text, srt), WebVTT or SSE (stream: true).
TRANSCRIPT_TYPES = ("text/plain", "text/vtt")

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
    body_type: str = JSON  # the request body's media type
    answers: tuple[str, ...] = ()  # the 200's media types besides JSON and the stream's (text, audio)
    json_answer: bool = True  # whether the 200 can be JSON
    answer: Schema | None = None  # the 200's JSON schema, where written out (else any object)


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
    media: list[Route] = []
    for prefix in ("/v3", "/v1"):
        media += [
            Route(
                f"{prefix}/images/generations",
                "post",
                "Image generation (JSON: b64_json images, or with response_format url links to GET)",
                OPENAI_ERROR,
                IMAGE_GENERATION,
                answer=IMAGES_ANSWER,
            ),
            Route(
                f"{prefix}/images/edits",
                "post",
                "Image edit or inpainting (multipart form; b64_json images, or url links)",
                OPENAI_ERROR,
                IMAGE_EDIT,
                body_type=FORM,
                answer=IMAGES_ANSWER,
            ),
            Route(
                f"{prefix}/images/files/{{image_id}}.png",
                "get",
                "A generated image a response_format url answer links to (404 once expired or evicted)",
                OPENAI_ERROR,
                parameters=[_path_parameter("image_id")],
                answers=("image/png",),
                json_answer=False,
            ),
            Route(
                f"{prefix}/audio/transcriptions",
                "post",
                "Speech to text (multipart form; JSON, text, srt or vtt, or SSE with stream: true)",
                OPENAI_ERROR,
                TRANSCRIPTION,
                SSE,
                body_type=FORM,
                answers=TRANSCRIPT_TYPES,
            ),
            Route(
                f"{prefix}/audio/translations",
                "post",
                "Speech to English text (multipart form; JSON, text, srt or vtt, or SSE with stream: true)",
                OPENAI_ERROR,
                TRANSLATION,
                SSE,
                body_type=FORM,
                answers=TRANSCRIPT_TYPES,
            ),
            Route(
                f"{prefix}/audio/speech",
                "post",
                "Text to speech (the audio, sent whole)",
                OPENAI_ERROR,
                SPEECH,
                answers=tuple(SPEECH_MEDIA_TYPES.values()),
                json_answer=False,
            ),
        ]
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
    return [*responses, *media, *anthropic, *ollama, *cohere, *llama]

"""Ollama's request bodies as the OpenAI bodies the stock graphs take.

/api/chat and /api/generate become a chat completion (a generate with `raw` becomes a completion:
no template), /api/embed and /api/embeddings an embeddings request. Only the shape changes here;
the request calculators still validate every value (their 400s name the OpenAI field, e.g.
`max_tokens` for `num_predict`). Options and fields that would change nothing here (load-time
options such as num_ctx or num_gpu, keep_alive) are accepted and ignored, as Ollama does with
options a model does not use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from calculators.packets import Endpoint
from graphs.errors import InvalidRequestError

# Ollama option -> the OpenAI field it sets.
OPTION_FIELDS = {
    "temperature": "temperature",
    "top_k": "top_k",
    "top_p": "top_p",
    "min_p": "min_p",
    "num_predict": "max_tokens",
    "stop": "stop",
    "seed": "seed",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "repeat_penalty": "repetition_penalty",
}
THINK_LEVELS = ("low", "medium", "high")


@dataclass(frozen=True, slots=True)
class GraphRequest:
    """What to start: the endpoint and OpenAI body; `stream` as the Ollama client asked."""

    model: str
    endpoint: Endpoint
    body: dict[str, Any]
    stream: bool
    load_only: bool = False  # no prompt at all: Ollama's way to load a model (done_reason "load")
    message: bool = False  # answered as /api/chat's message (else /api/generate's response)


def _expect(body: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = body.get(key)
    if value is not None and not isinstance(value, kind):
        raise InvalidRequestError(f"'{key}' must be {what}", param=key)
    return value


def model_name(body: dict[str, Any]) -> str:
    name = body.get("model")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError("model is required", param="model")
    return name


def _options(body: dict[str, Any]) -> dict[str, Any]:
    options = _expect(body, "options", dict, "an object") or {}
    fields: dict[str, Any] = {}
    for name, field in OPTION_FIELDS.items():
        value = options.get(name)
        if value is None:
            continue
        if name == "num_predict" and isinstance(value, int) and not isinstance(value, bool) and value < 0:
            continue  # -1: no limit, -2: fill the context; both are the server's bound here
        fields[field] = value
    return fields


def _format(body: dict[str, Any]) -> dict[str, Any]:
    fmt = body.get("format")
    if fmt in (None, ""):
        return {}
    if fmt == "json":
        return {"response_format": {"type": "json_object"}}
    if isinstance(fmt, dict):
        return {"response_format": {"type": "json_schema", "json_schema": {"name": "format", "schema": fmt}}}
    raise InvalidRequestError("'format' must be \"json\" or a JSON schema object", param="format")


def _think(body: dict[str, Any]) -> dict[str, Any]:
    think = body.get("think")
    if think is None:
        return {}
    if isinstance(think, bool):
        return {"chat_template_kwargs": {"enable_thinking": think}}
    if think in THINK_LEVELS:
        return {"reasoning_effort": think}
    raise InvalidRequestError(f"'think' must be true, false or one of {', '.join(THINK_LEVELS)}", param="think")


def _images(value: Any) -> list[dict[str, Any]]:
    """Ollama's base64 images as image_url parts (data URLs; the loader reads the real type)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(i, str) and i for i in value):
        raise InvalidRequestError("'images' must be a list of base64 strings", param="images")
    return [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}"}} for image in value]


def _content(text: Any, images: Any) -> Any:
    parts = _images(images)
    if not parts:
        return text if text is not None else ""
    return [{"type": "text", "text": text or ""}, *parts]


def _tool_calls(calls: Any) -> list[dict[str, Any]]:
    if not isinstance(calls, list):
        raise InvalidRequestError("'tool_calls' must be a list", param="messages")
    out = []
    for i, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise InvalidRequestError("each tool call needs a function with a name", param="messages")
        arguments = function.get("arguments", {})
        text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
        out.append({"id": f"call_{i}", "type": "function", "function": {"name": function["name"], "arguments": text}})
    return out


def _message(message: Any) -> dict[str, Any]:
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise InvalidRequestError("each message must be an object with a 'role'", param="messages")
    role = message["role"]
    out: dict[str, Any] = {"role": role, "content": _content(message.get("content"), message.get("images"))}
    if message.get("tool_calls"):
        out["tool_calls"] = _tool_calls(message["tool_calls"])
    if isinstance(message.get("thinking"), str):
        out["reasoning_content"] = message["thinking"]
    if role == "tool":  # Ollama names the tool; OpenAI's history wants the call's id
        out["tool_call_id"] = message.get("tool_name") or message.get("tool_call_id") or "call_0"
    return out


def _generation_fields(body: dict[str, Any]) -> dict[str, Any]:
    # The graph always streams (the front end gathers a unary answer), with usage for the last line.
    return {**_options(body), **_format(body), "stream": True, "stream_options": {"include_usage": True}}


def _stream(body: dict[str, Any]) -> bool:
    stream = _expect(body, "stream", bool, "a boolean")
    return True if stream is None else bool(stream)  # Ollama streams unless told not to


def chat(body: dict[str, Any]) -> GraphRequest:
    model, stream = model_name(body), _stream(body)
    messages = _expect(body, "messages", list, "a list of messages") or []
    if not messages:
        return GraphRequest(model, "chat/completions", {}, stream, load_only=True, message=True)
    openai: dict[str, Any] = {"model": model, "messages": [_message(m) for m in messages]}
    openai.update(_generation_fields(body))
    openai.update(_think(body))
    tools = _expect(body, "tools", list, "a list of tools")
    if tools:
        openai["tools"] = tools
    return GraphRequest(model, "chat/completions", openai, stream, message=True)


def generate(body: dict[str, Any]) -> GraphRequest:
    model, stream = model_name(body), _stream(body)
    for unsupported, why in (
        ("suffix", "fill-in-the-middle is not served"),
        ("template", "the model's own chat template is used"),
        ("context", "no token history is kept between requests; send the turns to /api/chat"),
    ):
        if body.get(unsupported):
            raise InvalidRequestError(f"'{unsupported}' is not supported: {why}", param=unsupported)
    prompt = _expect(body, "prompt", str, "a string") or ""
    system = _expect(body, "system", str, "a string")
    images = body.get("images")
    if not prompt and not images:
        return GraphRequest(model, "chat/completions", {}, stream, load_only=True)
    fields = _generation_fields(body)
    if body.get("raw"):  # the prompt as given, no template
        if images:
            raise InvalidRequestError("'images' need the chat template; 'raw' prompts take text only", param="images")
        return GraphRequest(model, "completions", {"model": model, "prompt": prompt, **fields}, stream)
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": _content(prompt, images)})
    return GraphRequest(model, "chat/completions", {"model": model, "messages": messages, **fields, **_think(body)}, stream)


def embed(body: dict[str, Any]) -> GraphRequest:
    """/api/embed: `input` a string or a list of strings."""
    model = model_name(body)
    text = body.get("input")
    if text is None:
        raise InvalidRequestError("input is required", param="input")
    openai: dict[str, Any] = {"model": model, "input": text, "encoding_format": "float"}
    if body.get("dimensions") is not None:
        openai["dimensions"] = body["dimensions"]
    return GraphRequest(model, "embeddings", openai, stream=False)


def embeddings(body: dict[str, Any]) -> GraphRequest:
    """/api/embeddings (the older one): one `prompt`."""
    model = model_name(body)
    prompt = _expect(body, "prompt", str, "a string")
    if not prompt:
        raise InvalidRequestError("prompt is required", param="prompt")
    return GraphRequest(model, "embeddings", {"model": model, "input": prompt, "encoding_format": "float"}, stream=False)

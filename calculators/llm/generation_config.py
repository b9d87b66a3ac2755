"""The one place where OpenAI request fields become openvino-genai `GenerationConfig` fields."""

from __future__ import annotations

import json
from typing import Any

from calculators.openai.protocol import ChatCompletionRequest, CompletionRequest
from graphs.errors import InvalidRequestError


def max_new_tokens(
    params: ChatCompletionRequest | CompletionRequest,
    prompt_tokens: int,
    context_length: int | None,
    max_tokens_limit: int,
) -> int:
    """How many tokens to generate: the request's limit, checked against the context window."""
    requested = params.token_limit()
    param = "max_completion_tokens" if getattr(params, "max_completion_tokens", None) else "max_tokens"
    if context_length is not None and prompt_tokens >= context_length:
        raise InvalidRequestError(
            f"the prompt has {prompt_tokens} tokens; this model's context length is {context_length} tokens",
            param="messages" if isinstance(params, ChatCompletionRequest) else "prompt",
            code="context_length_exceeded",
        )
    room = None if context_length is None else context_length - prompt_tokens
    if requested is None:
        return min(max_tokens_limit, room) if room is not None else max_tokens_limit
    if requested > max_tokens_limit:
        raise InvalidRequestError(f"{param} is {requested}; this servable allows at most {max_tokens_limit}", param=param)
    if room is not None and requested > room:
        raise InvalidRequestError(
            f"this model's context length is {context_length} tokens; the prompt has {prompt_tokens} and {param} asks for {requested} more",
            param=param,
            code="context_length_exceeded",
        )
    return requested


def engine_config(params: ChatCompletionRequest | CompletionRequest, new_tokens: int) -> dict[str, Any]:
    """GenerationConfig fields for the request (unset fields keep the model's defaults).

    Stop strings are not passed: the detokenizer finds them in text (exactly, across chunk
    boundaries) and stops the engine request.
    """
    config: dict[str, Any] = {"max_new_tokens": new_tokens}
    if params.temperature is not None:
        config["do_sample"] = params.temperature > 0.0
        if params.temperature > 0.0:
            config["temperature"] = params.temperature
    if params.top_p is not None:
        config["top_p"] = params.top_p
    if params.top_k is not None:
        config["top_k"] = params.top_k if params.top_k > 0 else 2**31 - 1  # -1 and 0 mean "no top-k"
    if params.min_p is not None:
        config["min_p"] = params.min_p
    if params.repetition_penalty is not None:
        config["repetition_penalty"] = params.repetition_penalty
    if params.presence_penalty is not None:
        config["presence_penalty"] = params.presence_penalty
    if params.frequency_penalty is not None:
        config["frequency_penalty"] = params.frequency_penalty
    if params.seed is not None:
        # update_generation_config() converts through a signed 64-bit int: keep the seed within it.
        config["rng_seed"] = params.seed & 0x7FFFFFFFFFFFFFFF
    if params.ignore_eos:
        config["ignore_eos"] = True
    if params.n > 1:
        config["num_return_sequences"] = params.n
    if params.beams > 1:
        config["num_beams"] = params.beams
        config["do_sample"] = False
        if params.length_penalty is not None:
            config["length_penalty"] = params.length_penalty
    if params.min_tokens:
        config["min_new_tokens"] = params.min_tokens
    if params.stop_token_ids:
        config["stop_token_ids"] = sorted(set(params.stop_token_ids))
    if params.wants_logprobs:
        config["logprobs"] = 1
    schema = guided_schema(params)
    if schema is not None:
        config[JSON_SCHEMA_KEY] = json.dumps(schema)
    return config


# Not a GenerationConfig field: the worker turns it into a StructuredOutputConfig.
JSON_SCHEMA_KEY = "json_schema"


def guided_schema(params: ChatCompletionRequest | CompletionRequest) -> dict[str, Any] | None:
    """The JSON schema the output must follow, if any: from response_format, or from a
    tool_choice that forces a call (then the output is the call itself, as JSON)."""
    if isinstance(params, ChatCompletionRequest) and params.tools and params.tool_choice not in (None, "none", "auto"):
        choice = params.tool_choice
        if isinstance(choice, str):  # "required": a list of one or more calls to any of the tools
            calls = [
                {
                    "type": "object",
                    "properties": {"name": {"const": tool.function.name}, "parameters": _parameters(tool.function.parameters)},
                    "required": ["name", "parameters"],
                }
                for tool in params.tools
            ]
            return {"type": "array", "minItems": 1, "items": {"anyOf": calls}}
        tool = next(t for t in params.tools if t.function.name == choice.function.name)
        return _parameters(tool.function.parameters)
    fmt = params.response_format
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "object"}
    assert fmt.json_schema is not None and fmt.json_schema.json_schema is not None
    return fmt.json_schema.json_schema


def _parameters(schema: dict[str, Any] | None) -> dict[str, Any]:
    return schema if schema else {"type": "object", "properties": {}}

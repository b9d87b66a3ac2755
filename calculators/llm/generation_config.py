"""The one place where OpenAI request fields become openvino-genai `GenerationConfig` fields."""

from __future__ import annotations

from typing import Any

from calculators.llm.guided import GRAMMAR_KEY, grammar
from calculators.llm.options import DEFAULT_ASSISTANT_TOKENS, Speculation
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


def engine_config(
    params: ChatCompletionRequest | CompletionRequest,
    new_tokens: int,
    tool_parser: str | None = None,
    speculation: Speculation | None = None,
) -> dict[str, Any]:
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
        if isinstance(params, CompletionRequest) and params.echo:
            config["echo"] = True  # the engine then returns the prompt's tokens and log-probabilities first
    if speculation is not None:
        config.update(_speculative(params, speculation))
    held_to = grammar(params, tool_parser)
    if held_to is not None:
        config[GRAMMAR_KEY] = held_to
    return config


def _speculative(params: ChatCompletionRequest | CompletionRequest, speculation: Speculation) -> dict[str, Any]:
    """Speculative decoding fields (checked by support.check_speculation): genai needs
    num_assistant_tokens (or, with a draft model, assistant_confidence_threshold), and
    max_ngram_size for prompt lookup; unset ones get the defaults."""
    if speculation.kind == "prompt_lookup":
        return {
            "num_assistant_tokens": params.num_assistant_tokens or DEFAULT_ASSISTANT_TOKENS,
            "max_ngram_size": params.max_ngram_size or speculation.max_ngram_size,
        }
    if params.assistant_confidence_threshold is not None:
        return {"assistant_confidence_threshold": params.assistant_confidence_threshold}
    return {"num_assistant_tokens": params.num_assistant_tokens or DEFAULT_ASSISTANT_TOKENS}

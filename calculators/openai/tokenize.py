"""`POST /v3/tokenize` and `/v3/detokenize` (as vLLM has them), for clients that count tokens.

Served by the LLM resource (`LLMResource.tokenize_request` / `detokenize_request`): the same
chat template and tokenizer as generation, so the count is exactly what a request would cost.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, ValidationError

from calculators.openai.protocol import ChatMessage, TemplateKwargs, Tool, _Model
from calculators.openai.request_calculator import describe_validation_error
from graphs.errors import InvalidRequestError


class TokenizeCompletion(_Model):
    model: str
    prompt: str
    add_special_tokens: bool = True


class TokenizeChat(_Model):
    model: str
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    add_generation_prompt: bool = True
    add_special_tokens: bool = False
    tools: list[Tool] | None = None
    chat_template_kwargs: TemplateKwargs = None


class Detokenize(_Model):
    model: str
    tokens: list[Annotated[int, Field(ge=0)]]


def parse_tokenize(body: dict[str, Any]) -> TokenizeCompletion | TokenizeChat:
    schema: type[TokenizeCompletion] | type[TokenizeChat] = TokenizeChat if "messages" in body else TokenizeCompletion
    try:
        return schema.model_validate(body)
    except ValidationError as exc:
        raise describe_validation_error(exc) from None


def parse_detokenize(body: dict[str, Any]) -> Detokenize:
    try:
        return Detokenize.model_validate(body)
    except ValidationError as exc:
        raise describe_validation_error(exc) from None


def check_token_ids(ids: list[int], vocab_size: int) -> None:
    bad = [i for i in ids if i >= vocab_size]
    if bad:
        raise InvalidRequestError(f"token ids out of the vocabulary (size {vocab_size}): {bad[:5]}", param="tokens")


def check_prompt_tokens(count: int, limit: int | None, context_length: int | None, param: str, at_least: bool = False) -> None:
    """The bounds chat puts on a prompt (TokenizerCalculator, max_new_tokens), also for /tokenize:
    a prompt chat would refuse is a 400 there too, not a count (nor megabytes of ids).
    `at_least`: `count` is a lower bound worked out before encoding."""
    if limit is not None and count > limit:
        why = f"this server takes at most {limit} (max_prompt_tokens)"
    elif context_length is not None and count >= context_length:
        why = f"this model's context length is {context_length} tokens"
    else:
        return
    has = f"at least {count}" if at_least else str(count)
    raise InvalidRequestError(f"the prompt has {has} tokens; {why}", param=param, code="context_length_exceeded")


def check_detokenize_size(body: dict[str, Any], context_length: int | None) -> None:
    """/detokenize takes at most a context's worth of ids (no sequence is longer), checked before
    the list is validated id by id."""
    tokens = body.get("tokens")
    if context_length is not None and isinstance(tokens, list) and len(tokens) > context_length:
        raise InvalidRequestError(
            f"{len(tokens)} token ids; this model's context length is {context_length} tokens",
            param="tokens",
            code="context_length_exceeded",
        )

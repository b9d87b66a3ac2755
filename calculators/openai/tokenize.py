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

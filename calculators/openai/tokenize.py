"""`POST /v3/tokenize` and `/v3/detokenize` (as vLLM has them), for clients that count tokens.

`tokenize` / `detokenize` below, reached through the LLM resource (`LLMResource.tokenize_request`
/ `detokenize_request`): the same chat template, tokenizer and prompt policy as generation, so
the count is exactly what a request would cost.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, ValidationError

from calculators.llm.chat_prompt import template_messages
from calculators.llm.model_files import ModelTokenizer
from calculators.llm.prompt_policy import PromptPolicy
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


def tokenize(body: dict[str, Any], tokenizer: ModelTokenizer, policy: PromptPolicy) -> dict[str, Any]:
    """`/v3/tokenize`: a prompt, or chat messages through the chat template, to token ids,
    within the bounds chat puts on a prompt (a 400 beyond them). Blocking: the front end runs
    it in a thread, under admission."""
    request = parse_tokenize(body)
    if isinstance(request, TokenizeChat):
        tools = [t.model_dump(exclude_none=True) for t in request.tools] if request.tools else None
        text = tokenizer.render_chat(
            template_messages(request.messages),
            add_generation_prompt=request.add_generation_prompt,
            tools=tools,
            **(request.chat_template_kwargs or {}),
        )
        param = "messages"
    else:
        text, param = request.prompt, "prompt"
    # genai's encode holds the GIL throughout: a text that cannot fit is refused unencoded
    policy.refuse_surely_too_long(text, param)
    tokens = tokenizer.encode(text, add_special_tokens=request.add_special_tokens)
    policy.check_prompt_tokens(len(tokens), param)
    return {"count": len(tokens), "max_model_len": policy.context_length, "tokens": tokens}


def detokenize(body: dict[str, Any], tokenizer: ModelTokenizer, policy: PromptPolicy) -> dict[str, Any]:
    """`/v3/detokenize`: token ids (at most a context's worth) to text (special tokens shown).
    Blocking, like tokenize."""
    check_detokenize_size(body, policy.context_length or policy.prompt_limit)
    request = parse_detokenize(body)
    if tokenizer.token_bytes is not None:
        check_token_ids(request.tokens, len(tokenizer.token_bytes.table))
    return {"prompt": tokenizer.decode(request.tokens, skip_special_tokens=False)}

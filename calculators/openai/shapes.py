"""OpenAI's response shapes, as plain dicts (encoded with msgspec by the response calculator)."""

from __future__ import annotations

from typing import Any

from calculators.packets import TokenLogprob

SYSTEM_FINGERPRINT = "ovserve-0.1.0"


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cached_tokens is not None:
        body["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
    return body


def chat_logprobs(entries: list[TokenLogprob], top: int = 0) -> dict[str, Any]:
    """`choices[].logprobs` of chat: one entry per token. `top` 1 (greedy decoding only, so the
    chosen token is the most likely) lists that token as its own single alternative."""

    def entry(e: TokenLogprob) -> dict[str, Any]:
        alternatives = [{"token": e.token, "logprob": e.logprob, "bytes": list(e.raw)}] if top else []
        return {"token": e.token, "logprob": e.logprob, "bytes": list(e.raw), "top_logprobs": alternatives}

    return {"content": [entry(e) for e in entries], "refusal": None}


def completion_logprobs(entries: list[TokenLogprob], first_offset: int, top: int = 0) -> dict[str, Any]:
    # An echoed prompt's first token has no log-probability: null, as OpenAI sends it. `top` 1
    # (greedy decoding only) gives each token as its own most likely alternative.
    """`choices[].logprobs` of completions; text_offset counts characters from the start of
    the choice's text (`first_offset` is where this batch of tokens starts)."""
    offsets = []
    offset = first_offset
    for entry in entries:
        offsets.append(offset)
        offset += len(entry.token)
    return {
        "tokens": [e.token for e in entries],
        "token_logprobs": [e.logprob for e in entries],
        "top_logprobs": [({e.token: e.logprob} if e.logprob is not None else None) for e in entries] if top else None,
        "text_offset": offsets,
    }


def tool_call(index: int | None, call_id: str, name: str, arguments: str) -> dict[str, Any]:
    call: dict[str, Any] = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    if index is not None:  # streamed fragments carry their index
        call = {"index": index, **call}
    return call

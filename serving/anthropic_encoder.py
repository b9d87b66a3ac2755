"""The chat graph's answers in Anthropic's shapes: a `message` object from the chat completion
(`message`), Messages API stream events from its chunks (`MessageStream`), and errors as
`{"type": "error", "error": {"type", "message"}}` (`error_body`)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import Any

import msgspec

from graphs.errors import OvserveError
from serving.errors import status_of

_json = msgspec.json.Encoder()

# OpenAI finish reasons -> Anthropic stop reasons (a stop string found is told apart in `_stop`).
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
# Status -> Anthropic's error type. The status stays ours: a 503 (loading, draining) is not
# Anthropic's 529, which tells a client the whole API is overloaded.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
}


def error_body(error: OvserveError) -> dict[str, Any]:
    return {"type": "error", "error": {"type": _ERROR_TYPES.get(status_of(error), "api_error"), "message": error.message}}


def message_id() -> str:
    return "msg_" + secrets.token_hex(12)


def tool_use_id(call_id: str | None) -> str:
    """The chat route's call id (`call_…`) as Anthropic spells one (`toolu_…`)."""
    return "toolu_" + (call_id.removeprefix("call_") if call_id else secrets.token_hex(12))


def _stop(finish_reason: str | None, text: str, stops: Sequence[str]) -> tuple[str, str, str | None]:
    """(stop_reason, text without the stop string, the stop string): the chat request kept the
    stop string in the text (include_stop_str_in_output) so that it can be named here."""
    if finish_reason == "stop":
        for stop in stops:
            if text.endswith(stop):
                return "stop_sequence", text[: len(text) - len(stop)], stop
    return _STOP_REASONS.get(finish_reason or "stop", "end_turn"), text, None


def _tool_input(arguments: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if isinstance(arguments, dict):
        return arguments
    try:
        value = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def message(completion: dict[str, Any], model: str, stops: Sequence[str]) -> dict[str, Any]:
    """A `chat.completion` as Anthropic's `message`."""
    choice = completion["choices"][0]
    chat = choice.get("message") or {}
    stop_reason, text, stop_sequence = _stop(choice.get("finish_reason"), chat.get("content") or "", stops)
    content: list[dict[str, Any]] = []
    if chat.get("reasoning_content"):
        content.append({"type": "thinking", "thinking": chat["reasoning_content"], "signature": ""})
    if text:
        content.append({"type": "text", "text": text})
    for call in chat.get("tool_calls") or ():
        function = call.get("function") or {}
        arguments = _tool_input(function.get("arguments"))
        if arguments is None:  # not a JSON object (cut short): handed back as text
            content.append({"type": "text", "text": function.get("arguments") or ""})
            continue
        content.append({"type": "tool_use", "id": tool_use_id(call.get("id")), "name": function.get("name", ""), "input": arguments})
    usage = completion.get("usage") or {}
    return {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": {"input_tokens": usage.get("prompt_tokens", 0), "output_tokens": usage.get("completion_tokens", 0)},
    }


def event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + _json.encode({"type": name, **data}) + b"\n\n"


class MessageStream:
    """Chat chunks (the graph's StreamChunks choices) -> Anthropic's events: `message_start`,
    then per content block `content_block_start`, its deltas (`text_delta`, `thinking_delta`,
    `input_json_delta`) and `content_block_stop`; `ping` after the first block starts; at the end
    `message_delta` (stop reason, usage) and `message_stop`."""

    def __init__(self, model: str, stops: Sequence[str]) -> None:
        self._model = model
        self._stops = tuple(stops)
        self._hold = max((len(s) for s in self._stops), default=0)  # text that may end in a stop string
        self._started = False
        self._pinged = False
        self._index = -1  # the open block's index
        self._open: str | None = None  # its kind: "text", "thinking", "tool_use"
        self._tool_calls: dict[int, int] = {}  # chat tool call index -> block index
        self._text = ""  # text held back: it may be the stop string, cut at the end
        self._finish: str | None = None

    def encode(self, choices: Sequence[dict[str, Any]], usage: dict[str, Any] | None, done: bool) -> bytes:
        out: list[bytes] = []
        if not self._started:
            self._started = True
            start: dict[str, Any] = {
                "id": message_id(),
                "type": "message",
                "role": "assistant",
                "model": self._model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0},  # the prompt's count comes with message_delta
            }
            out.append(event("message_start", {"message": start}))
        for choice in choices:
            self._delta(choice.get("delta") or {}, out)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        if done:
            self._end(usage or {}, out)
        return b"".join(out)

    def _delta(self, delta: dict[str, Any], out: list[bytes]) -> None:
        if delta.get("reasoning_content"):
            self._block("thinking", {"type": "thinking", "thinking": "", "signature": ""}, out)
            out.append(self._block_delta({"type": "thinking_delta", "thinking": delta["reasoning_content"]}))
        if delta.get("content"):
            self._block("text", {"type": "text", "text": ""}, out)
            self._text += delta["content"]
            cut = len(self._text) - self._hold
            if cut > 0:
                out.append(self._block_delta({"type": "text_delta", "text": self._text[:cut]}))
                self._text = self._text[cut:]
        for call in delta.get("tool_calls") or ():
            function = call.get("function") or {}
            if call.get("index") not in self._tool_calls:
                block: dict[str, Any] = {
                    "type": "tool_use",
                    "id": tool_use_id(call.get("id")),
                    "name": function.get("name") or "",
                    "input": {},
                }
                self._block("tool_use", block, out, force=True)
                self._tool_calls[call.get("index")] = self._index
            if function.get("arguments"):
                arguments = function["arguments"]
                partial = arguments if isinstance(arguments, str) else json.dumps(arguments)
                out.append(self._block_delta({"type": "input_json_delta", "partial_json": partial}))

    def _block(self, kind: str, block: dict[str, Any], out: list[bytes], force: bool = False) -> None:
        """Open a block of `kind` unless one is open (a new tool call always opens one)."""
        if self._open == kind and not force:
            return
        self._close(out)
        self._index += 1
        self._open = kind
        out.append(event("content_block_start", {"index": self._index, "content_block": block}))
        if not self._pinged:
            self._pinged = True
            out.append(event("ping", {}))

    def _block_delta(self, delta: dict[str, Any]) -> bytes:
        return event("content_block_delta", {"index": self._index, "delta": delta})

    def _close(self, out: list[bytes]) -> None:
        if self._open == "text" and self._text:  # not the stop string: it was text after all
            out.append(self._block_delta({"type": "text_delta", "text": self._text}))
            self._text = ""
        if self._open is not None:
            out.append(event("content_block_stop", {"index": self._index}))
            self._open = None

    def _end(self, usage: dict[str, Any], out: list[bytes]) -> None:
        stop_reason, self._text, stop_sequence = _stop(self._finish, self._text, self._stops)
        self._close(out)
        delta = {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
        counts = {"input_tokens": usage.get("prompt_tokens", 0), "output_tokens": usage.get("completion_tokens", 0)}
        out.append(event("message_delta", {"delta": delta, "usage": counts}))
        out.append(event("message_stop", {}))

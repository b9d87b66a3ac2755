"""The graph's streamed response values as Ollama's answers: NDJSON lines (`done: false` pieces,
then one `done: true` line with the counts and durations) or, unary, the same gathered into one
object.

The front end always runs the graph streaming (as Ollama itself does), so the first token's time
is known: `prompt_eval_duration` is arrival to first token (queueing and prefill),
`eval_duration` first token to the end, all in nanoseconds.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import msgspec

from calculators.packets import ResponseBody, ResponsePayload, StreamChunks
from graphs.errors import InvalidRequestError

_json = msgspec.json.Encoder()
# OpenAI finish reasons -> Ollama's done_reason (a tool call ends a turn like a stop)
DONE_REASONS = {"stop": "stop", "length": "length", "tool_calls": "stop", "content_filter": "stop"}


def timestamp() -> str:
    """Ollama's `created_at`: RFC 3339 in UTC."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def line(obj: dict[str, Any]) -> bytes:
    return _json.encode(obj) + b"\n"


class OllamaAnswer:
    """One /api/chat or /api/generate answer being built from the run's values."""

    __slots__ = (
        *("model", "chat", "texts", "arrived", "first_at"),
        *("content", "thinking", "calls", "finish", "prompt_tokens", "tokens", "done"),
    )

    def __init__(self, model: str, chat: bool, arrived: float, texts: bool = False) -> None:
        self.model = model
        self.chat = chat  # /api/chat (a message) or /api/generate (a response)
        self.texts = texts  # the graph answers a completion (raw generate): choices carry `text`
        self.arrived = arrived  # time.perf_counter() when the request arrived
        self.first_at: float | None = None
        self.content: list[str] = []
        self.thinking: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}  # tool calls by index, arguments gathered
        self.finish: str | None = None
        self.prompt_tokens = 0
        self.tokens = 0
        self.done = False

    def pieces(self, value: ResponsePayload) -> list[dict[str, Any]]:
        """The `done: false` lines of one value (gathered for the whole answer too)."""
        if isinstance(value, ResponseBody):  # a graph answering at once: its one choice
            return self._whole_body(value.body)
        if not isinstance(value, StreamChunks):
            raise InvalidRequestError(f"model {self.model!r} answers in its own format; use the /v3 API for it", param="model")
        lines = []
        for choice in value.choices:
            if choice.get("index", 0) != 0:
                continue
            delta = (choice.get("delta") or {}) if not self.texts else {"content": choice.get("text") or ""}
            lines += self._delta(delta)
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
                if self.calls:  # whole calls, in one message, as Ollama sends them
                    lines.append(self._piece("", "", self._tool_calls()))
        if value.usage is not None:
            self._usage(value.usage)
        self.done = self.done or value.done
        return lines

    def _delta(self, delta: dict[str, Any]) -> list[dict[str, Any]]:
        content, thinking = delta.get("content") or "", delta.get("reasoning_content") or ""
        for call in delta.get("tool_calls") or ():
            kept = self.calls.setdefault(call.get("index", len(self.calls)), {"name": "", "arguments": ""})
            function = call.get("function") or {}
            kept["name"] += function.get("name") or ""
            kept["arguments"] += function.get("arguments") or ""
        if not (content or thinking):
            return []
        if self.first_at is None:
            self.first_at = time.perf_counter()
        self.content.append(content)
        self.thinking.append(thinking)
        return [self._piece(content, thinking)]

    def _whole_body(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        choices = body.get("choices") or [{}]
        choice = choices[0]
        message = (choice.get("message") or {}) if not self.texts else {"content": choice.get("text") or ""}
        lines = self._delta({"content": message.get("content"), "reasoning_content": message.get("reasoning_content")})
        for index, call in enumerate(message.get("tool_calls") or ()):
            self._delta({"tool_calls": [{"index": index, **call}]})
        self.finish = choice.get("finish_reason") or "stop"
        self._usage(body.get("usage") or {})
        self.done = True
        return lines

    def _usage(self, usage: dict[str, Any]) -> None:
        self.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        self.tokens = int(usage.get("completion_tokens") or 0)

    def _tool_calls(self) -> list[dict[str, Any]]:
        calls = []
        for _, call in sorted(self.calls.items()):
            try:
                arguments = json.loads(call["arguments"]) if call["arguments"] else {}
            except json.JSONDecodeError:
                arguments = {"_raw": call["arguments"]}  # cut short (num_predict): kept, not lost
            calls.append({"function": {"name": call["name"], "arguments": arguments}})
        return calls

    def _piece(self, content: str, thinking: str, tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "created_at": timestamp()}
        if self.chat:
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if thinking:
                message["thinking"] = thinking
            if tool_calls:
                message["tool_calls"] = tool_calls
            out["message"] = message
        else:
            out["response"] = content
            if thinking:
                out["thinking"] = thinking
        out["done"] = False
        return out

    def final(self) -> dict[str, Any]:
        """The `done: true` line: the reason, the counts and the durations (ns)."""
        out = self._piece("", "")
        out["done"] = True
        out.update(self._figures())
        return out

    def whole(self) -> dict[str, Any]:
        """stream=false: the whole answer in one object."""
        out = self._piece("".join(self.content), "".join(self.thinking), self._tool_calls() if self.calls else None)
        out["done"] = True
        out.update(self._figures())
        return out

    def _figures(self) -> dict[str, Any]:
        now = time.perf_counter()
        first = self.first_at if self.first_at is not None else now
        return {
            "done_reason": DONE_REASONS.get(self.finish or "stop", "stop"),
            "total_duration": ns(now - self.arrived),
            "load_duration": 0,  # servables are loaded before they serve (a lazy one counts in prompt_eval)
            "prompt_eval_count": self.prompt_tokens,
            "prompt_eval_duration": ns(first - self.arrived),
            "eval_count": self.tokens,
            "eval_duration": ns(now - first),
        }


def loaded(model: str, chat: bool) -> dict[str, Any]:
    """The answer to a request without a prompt: Ollama's way to load a model."""
    out: dict[str, Any] = {"model": model, "created_at": timestamp()}
    if chat:
        out["message"] = {"role": "assistant", "content": ""}
    else:
        out["response"] = ""
    return {**out, "done": True, "done_reason": "load"}


def ns(seconds: float) -> int:
    """Seconds as Ollama's nanoseconds."""
    return max(0, int(seconds * 1e9))

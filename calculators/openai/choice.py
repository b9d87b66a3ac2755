"""One choice of a response as it is generated: its text, log-probabilities and, for chat, the
structure parsed out of the text (reasoning, tool calls)."""

from __future__ import annotations

import json
import secrets
from typing import Any, Protocol

from calculators.openai import shapes
from calculators.packets import TextDelta, TokenLogprob


class TextShaper(Protocol):
    """Turns generated text into chat message deltas ({"content"}, {"reasoning_content"},
    {"tool_calls": [...]}) as it streams; `finish()` flushes what was held back."""

    def feed(self, text: str) -> list[dict[str, Any]]: ...

    def finish(self) -> list[dict[str, Any]]: ...


class PlainText:
    def feed(self, text: str) -> list[dict[str, Any]]:
        return [{"content": text}] if text else []

    def finish(self) -> list[dict[str, Any]]:
        return []


def new_call_id() -> str:
    return "call_" + secrets.token_hex(12)


class ForcedToolCalls:
    """tool_choice "required" or a named function: the engine was held to JSON (the call's
    arguments, or a list of {name, parameters}); at the end that JSON becomes tool calls."""

    def __init__(self, function_name: str | None) -> None:
        self._name = function_name  # None: "required", the JSON names its functions
        self._parts: list[str] = []

    def feed(self, text: str) -> list[dict[str, Any]]:
        self._parts.append(text)
        return []

    def finish(self) -> list[dict[str, Any]]:
        text = "".join(self._parts)
        try:
            value = json.loads(text)
        except json.JSONDecodeError:  # cut short (max_tokens): hand back what came, as text
            return [{"content": text}] if text else []
        if self._name is not None:
            calls = [(self._name, value)]
        else:
            calls = [(item.get("name", ""), item.get("parameters", {})) for item in value if isinstance(item, dict)]
        return [
            {"tool_calls": [shapes.tool_call(i, new_call_id(), name, json.dumps(args, ensure_ascii=False))]}
            for i, (name, args) in enumerate(calls)
        ]


class ChoiceOutput:
    def __init__(self, index: int, shaper: TextShaper, prefix: str = "") -> None:
        self.index = index
        self.shaper = shaper
        self.prefix = prefix  # completions' echo: the prompt comes first
        self.texts: list[str] = [prefix] if prefix else []
        self.offset = len(prefix)  # characters so far (completions' text_offset)
        self.logprobs: list[TokenLogprob] = []
        self.prompt_logprobs = False
        self.echo_offsets = False  # streaming: text_offset restarted at the echoed prompt
        self.finish_reason: str | None = None
        self.started = False
        # chat: the message built from the shaped deltas
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}

    def add(self, delta: TextDelta) -> list[dict[str, Any]]:
        """Take one text delta; return the chat deltas it makes (also kept for the message)."""
        self.texts.append(delta.text)
        if delta.prompt_logprobs:  # echo with logprobs: the prompt's tokens come first
            self.logprobs.extend(delta.prompt_logprobs)
            self.prompt_logprobs = True
        if delta.logprobs:
            self.logprobs.extend(delta.logprobs)
        out = self.shaper.feed(delta.text)
        if delta.finish_reason is not None:
            self.finish_reason = delta.finish_reason
            out += self.shaper.finish()
            if any("tool_calls" in d for d in out) or self.tool_calls:
                self.finish_reason = "tool_calls"
        for d in out:
            self._keep(d)
        return out

    def _keep(self, delta: dict[str, Any]) -> None:
        if "content" in delta:
            self.content.append(delta["content"])
        if "reasoning_content" in delta:
            self.reasoning.append(delta["reasoning_content"])
        for call in delta.get("tool_calls", []):
            kept = self.tool_calls.setdefault(call["index"], {"id": call.get("id"), "name": "", "arguments": ""})
            function = call.get("function", {})
            kept["id"] = call.get("id") or kept["id"]
            kept["name"] += function.get("name") or ""
            kept["arguments"] += function.get("arguments") or ""

    def message(self) -> dict[str, Any]:
        content = "".join(self.content)
        message: dict[str, Any] = {"role": "assistant", "content": content if content or not self.tool_calls else None}
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        if self.tool_calls:
            message["tool_calls"] = [
                shapes.tool_call(None, call["id"], call["name"], call["arguments"]) for _, call in sorted(self.tool_calls.items())
            ]
        return message

    @property
    def text(self) -> str:
        return "".join(self.texts)

"""What every tool parser shares: the streaming interface and the JSON checks of one call."""

from __future__ import annotations

import json
from typing import Any

from calculators.parsers.events import (
    ContentDelta,
    Event,
    IdFactory,
    IncrementalParser,
    ParsedOutput,
    ToolCallArgumentsDelta,
    ToolCallStart,
    collect,
    new_tool_call_id,
)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _loads(text: str) -> Any:
    """json.loads, refusing NaN/Infinity (they would not survive as valid JSON)."""
    return json.loads(text, parse_constant=_reject_constant)


def tool_call_from_json(text: str) -> tuple[str, str] | None:
    """`(name, arguments JSON string)` from one generated call, or None if it is not one.

    Accepts `{"name": str, "arguments": {...}}` and `{"name": str, "parameters": {...}}` (Llama);
    missing arguments mean `{}`; arguments given as a string holding a JSON object are unwrapped.
    The arguments are re-serialized (`ensure_ascii=False`), so the string is always valid JSON.
    """
    try:
        call = _loads(text.strip())
    except (ValueError, RecursionError):
        return None
    if not isinstance(call, dict):
        return None
    name = call.get("name")
    if not isinstance(name, str) or not name:
        return None
    arguments = call["arguments"] if "arguments" in call else call.get("parameters", {})
    if isinstance(arguments, str):
        try:
            arguments = _loads(arguments)
        except (ValueError, RecursionError):
            return None
    if not isinstance(arguments, dict):
        return None
    return name, json.dumps(arguments, ensure_ascii=False)


class ToolParser(IncrementalParser):
    """Splits (the content part of) generated text into content and tool calls, incrementally.

    `feed(delta)` returns the events that are certain now; `finish()` the rest. Content that could
    still turn out to be part of a tag is held back. Each tool call is emitted whole when its
    text is complete: a `ToolCallStart` followed by one `ToolCallArgumentsDelta` carrying the full
    arguments JSON string. A block that is not a valid call stays in the content, verbatim.
    """

    name: str = ""

    def __init__(self, id_factory: IdFactory = new_tool_call_id) -> None:
        self._new_id = id_factory
        self._next_index = 0

    def parse(self, text: str) -> ParsedOutput:
        """The whole-text parse: the same machine fed at once (so streaming always agrees)."""
        parser = type(self)(self._new_id)
        return collect([*parser.feed(text), *parser.finish()])

    def _emit_call(self, name: str, arguments: str, events: list[Event]) -> None:
        index = self._next_index
        self._next_index += 1
        events.append(ToolCallStart(index=index, id=self._new_id(), name=name))
        events.append(ToolCallArgumentsDelta(index=index, text=arguments))

    @staticmethod
    def _emit_content(text: str, events: list[Event]) -> None:
        if text:
            events.append(ContentDelta(text))

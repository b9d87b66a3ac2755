"""Chat message deltas from the output parsers' events (reasoning and tool calls)."""

from __future__ import annotations

from typing import Any

from calculators.parsers import ContentDelta, Event, OutputParser, ReasoningDelta, ToolCallArgumentsDelta, ToolCallStart


def chat_deltas(events: list[Event]) -> list[dict[str, Any]]:
    deltas: list[dict[str, Any]] = []
    for event in events:
        if isinstance(event, ContentDelta):
            if deltas and set(deltas[-1]) == {"content"}:  # one delta per kind and step
                deltas[-1]["content"] += event.text
            elif event.text:
                deltas.append({"content": event.text})
        elif isinstance(event, ReasoningDelta):
            if deltas and set(deltas[-1]) == {"reasoning_content"}:
                deltas[-1]["reasoning_content"] += event.text
            elif event.text:
                deltas.append({"reasoning_content": event.text})
        elif isinstance(event, ToolCallStart):
            call = {"index": event.index, "id": event.id, "type": "function", "function": {"name": event.name, "arguments": ""}}
            deltas.append({"tool_calls": [call]})
        elif isinstance(event, ToolCallArgumentsDelta):
            deltas.append({"tool_calls": [{"index": event.index, "function": {"arguments": event.text}}]})
    return deltas


class ParsedText:
    """A TextShaper (see calculators.openai.choice) over an OutputParser."""

    def __init__(self, parser: OutputParser, single_call: bool = False) -> None:
        self._parser = parser
        self._single_call = single_call  # parallel_tool_calls: false keeps the first call only

    def feed(self, text: str) -> list[dict[str, Any]]:
        return self._limit(chat_deltas(self._parser.feed(text))) if text else []

    def finish(self) -> list[dict[str, Any]]:
        return self._limit(chat_deltas(self._parser.finish()))

    def _limit(self, deltas: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not self._single_call:
            return deltas
        return [d for d in deltas if "tool_calls" not in d or d["tool_calls"][0]["index"] == 0]

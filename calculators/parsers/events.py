"""What the output parsers emit: small frozen events while streaming, and the whole-text result.

Streaming: a parser's `feed(delta_text)` / `finish()` return lists of events. Concatenating the
`ContentDelta` texts gives the message `content`, the `ReasoningDelta` texts its
`reasoning_content`; each tool call opens with one `ToolCallStart` and its
`ToolCallArgumentsDelta` texts (same `index`), concatenated, are its `arguments` JSON string.
`collect(events)` does exactly that and gives the `ParsedOutput` a whole-text parse returns.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ContentDelta:
    """Text for the message's `content`."""

    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """Text for the message's `reasoning_content`."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    """A new tool call: `index` counts from 0 per choice; `id` is OpenAI style (`call_…`)."""

    index: int
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolCallArgumentsDelta:
    """A piece of the `arguments` JSON string of the tool call `index`."""

    index: int
    text: str


Event = ContentDelta | ReasoningDelta | ToolCallStart | ToolCallArgumentsDelta


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One parsed tool call; `arguments` is a JSON string holding an object."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ParsedOutput:
    """A whole generated text split into its parts.

    `content` is "" when nothing but reasoning and tool calls was generated (the response layer
    decides whether that is `null`); `reasoning_content` is None when there was no reasoning text.
    """

    content: str
    reasoning_content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()


IdFactory = Callable[[], str]


def new_tool_call_id() -> str:
    """`call_` + 24 random hex characters, like OpenAI's tool call ids."""
    return "call_" + secrets.token_hex(12)


def collect(events: Iterable[Event]) -> ParsedOutput:
    """Assemble streamed events into the whole-text result."""
    content: list[str] = []
    reasoning: list[str] = []
    starts: dict[int, ToolCallStart] = {}
    arguments: dict[int, list[str]] = {}
    for event in events:
        if isinstance(event, ContentDelta):
            content.append(event.text)
        elif isinstance(event, ReasoningDelta):
            reasoning.append(event.text)
        elif isinstance(event, ToolCallStart):
            starts[event.index] = event
            arguments.setdefault(event.index, [])
        else:
            arguments.setdefault(event.index, []).append(event.text)
    calls = tuple(ToolCall(id=starts[i].id, name=starts[i].name, arguments="".join(arguments[i])) for i in sorted(starts))
    reasoning_text = "".join(reasoning)
    return ParsedOutput(content="".join(content), reasoning_content=reasoning_text or None, tool_calls=calls)


def coalesce(events: Iterable[Event]) -> list[Event]:
    """Merge neighbouring text deltas of the same kind (fewer, larger SSE chunks; same result)."""
    out: list[Event] = []
    for event in events:
        last = out[-1] if out else None
        if isinstance(event, ContentDelta) and isinstance(last, ContentDelta):
            out[-1] = ContentDelta(last.text + event.text)
        elif isinstance(event, ReasoningDelta) and isinstance(last, ReasoningDelta):
            out[-1] = ReasoningDelta(last.text + event.text)
        elif isinstance(event, ToolCallArgumentsDelta) and isinstance(last, ToolCallArgumentsDelta) and last.index == event.index:
            out[-1] = ToolCallArgumentsDelta(event.index, last.text + event.text)
        elif isinstance(event, ContentDelta | ReasoningDelta | ToolCallArgumentsDelta) and not event.text:
            continue
        else:
            out.append(event)
    return out


class IncrementalParser(ABC):
    """feed() returns the events certain so far, finish() the rest (once); feeding after the
    finish is a bug. Subclasses implement `_feed` and `_finish`."""

    _finished = False

    def feed(self, text: str) -> list[Event]:
        if self._finished:
            raise RuntimeError(f"{type(self).__name__}.feed() after finish()")
        events: list[Event] = []
        if text:
            self._feed(text, events)
        return events

    def finish(self) -> list[Event]:
        if self._finished:
            return []
        self._finished = True
        events: list[Event] = []
        self._finish(events)
        return events

    @abstractmethod
    def _feed(self, text: str, events: list[Event]) -> None: ...

    @abstractmethod
    def _finish(self, events: list[Event]) -> None: ...

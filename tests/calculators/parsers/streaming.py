"""Helpers: feed a text to a parser in many chunkings and check each stream's shape."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from calculators.parsers import (
    ContentDelta,
    Event,
    IdFactory,
    ParsedOutput,
    ReasoningDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
    collect,
)


class StreamParser(Protocol):
    def feed(self, text: str) -> list[Event]: ...

    def finish(self) -> list[Event]: ...


def counting_ids() -> IdFactory:
    """Deterministic ids: call_000…0, call_000…1, …"""
    counter = itertools.count()
    return lambda: f"call_{next(counter):024d}"


def chunkings(text: str, seeds: int = 20) -> Iterator[list[str]]:
    """Whole, character by character, every split in two, and seeded random chunk sizes 1..8."""
    yield [text]
    yield list(text)
    for cut in range(1, len(text)):
        yield [text[:cut], text[cut:]]
    for seed in range(seeds):
        rng = random.Random(seed)
        chunks, pos = [], 0
        while pos < len(text):
            size = rng.randint(1, 8)
            chunks.append(text[pos : pos + size])
            pos += size
        yield chunks


def stream(parser: StreamParser, chunks: Sequence[str]) -> list[Event]:
    events: list[Event] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.finish())
    return events


def check_shape(events: list[Event]) -> None:
    """Tool calls are numbered 0, 1, … in order; arguments follow their start and are valid JSON objects."""
    started: list[int] = []
    arguments: dict[int, str] = {}
    for event in events:
        if isinstance(event, ToolCallStart):
            assert event.index == len(started), events
            assert event.id.startswith("call_") and len(event.id) == 29
            started.append(event.index)
            arguments[event.index] = ""
        elif isinstance(event, ToolCallArgumentsDelta):
            assert event.index in arguments, "arguments before their ToolCallStart"
            arguments[event.index] += event.text
        else:
            assert isinstance(event, ContentDelta | ReasoningDelta)
            assert event.text, "empty text delta"
    for text in arguments.values():
        assert isinstance(json.loads(text), dict)


def assert_chunking_invariant(make: Callable[[IdFactory], StreamParser], text: str, expected: ParsedOutput) -> None:
    """Every chunking of `text` assembles to `expected` (ids from a fresh counter each time)."""
    for chunks in chunkings(text):
        events = stream(make(counting_ids()), chunks)
        check_shape(events)
        assert collect(events) == expected, f"chunks={chunks!r}"

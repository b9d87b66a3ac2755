"""The combined parser the response path uses: reasoning first, then tool calls in the content.

One `OutputParser` per generated sequence (per choice). Reasoning text goes out as
`ReasoningDelta`s and is never searched for tool calls; the content after it goes through the
tool parser. Enable tool parsing only when the request has `tools` and `tool_choice` is not
"none"; with neither parser the text passes through as content.
"""

from __future__ import annotations

from calculators.parsers.events import ContentDelta, Event, IdFactory, ParsedOutput, coalesce, collect, new_tool_call_id
from calculators.parsers.reasoning import Qwen3ReasoningParser
from calculators.parsers.registry import get_reasoning_parser, get_tool_parser
from calculators.parsers.tools import ToolParser


class OutputParser:
    """`feed(delta) -> events`, `finish() -> events`, and `parse(text)` for a whole text.

    Raises ValueError at construction for an unknown parser name. `starts_in_reasoning` only
    matters with a reasoning parser (see `reasoning.prompt_opens_reasoning`).
    """

    def __init__(
        self,
        tool_parser: str | None = None,
        reasoning_parser: str | None = None,
        starts_in_reasoning: bool = False,
        *,
        id_factory: IdFactory = new_tool_call_id,
    ) -> None:
        self.tool_parser_name = tool_parser
        self.reasoning_parser_name = reasoning_parser
        self.starts_in_reasoning = starts_in_reasoning
        self._id_factory = id_factory
        self._tools: ToolParser | None = get_tool_parser(tool_parser)(id_factory) if tool_parser else None
        self._reasoning: Qwen3ReasoningParser | None = (
            get_reasoning_parser(reasoning_parser)(starts_in_reasoning) if reasoning_parser else None
        )

    @property
    def active(self) -> bool:
        """Whether any parsing happens (else every delta is content as it came)."""
        return self._tools is not None or self._reasoning is not None

    def feed(self, text: str) -> list[Event]:
        if self._reasoning is None:
            return self._content(text, final=False)
        return self._route(self._reasoning.feed(text), final=False)

    def finish(self) -> list[Event]:
        if self._reasoning is None:
            return self._content("", final=True)
        return self._route(self._reasoning.finish(), final=True)

    def parse(self, text: str) -> ParsedOutput:
        """The whole-text result (a fresh parser, fed at once: it always agrees with streaming)."""
        parser = OutputParser(self.tool_parser_name, self.reasoning_parser_name, self.starts_in_reasoning, id_factory=self._id_factory)
        return collect([*parser.feed(text), *parser.finish()])

    def _route(self, events: list[Event], final: bool) -> list[Event]:
        out: list[Event] = []
        for event in events:
            if isinstance(event, ContentDelta):
                out.extend(self._content(event.text, final=False))
            else:
                out.append(event)
        if final:
            out.extend(self._content("", final=True))
        return coalesce(out)

    def _content(self, text: str, final: bool) -> list[Event]:
        if self._tools is None:
            return [ContentDelta(text)] if text else []
        events = self._tools.feed(text)
        if final:
            events.extend(self._tools.finish())
        return coalesce(events)

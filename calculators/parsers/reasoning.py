"""`qwen3`: reasoning in `<think>…</think>` (Qwen3, DeepSeek-R1 style), split from the content.

Rules (whole-text and streaming alike):
- `<think>` opens reasoning only as the first thing generated (leading whitespace dropped); a
  later `<think>` is ordinary content. With `starts_in_reasoning` (the chat template ended the
  prompt with `<think>`, see `prompt_opens_reasoning`), the output starts inside the reasoning,
  and a redundant `<think>` at its very start is skipped;
- the first `</think>` ends the reasoning; everything after it is content (tags there included);
- no `</think>` (output cut short): everything after the opening is reasoning;
- newlines framing the tags are dropped, as the Qwen3 chat template writes and re-reads them:
  reasoning is stripped of leading and trailing "\\n", content of leading "\\n" after `</think>`.
  (vLLM and OVMS keep them; Qwen's own template strips them when it renders history.)
Reasoning text is never looked at for tool calls: the combined parser sends only content on.
"""

from __future__ import annotations

from enum import Enum, auto

from calculators.parsers.events import ContentDelta, Event, IncrementalParser, ParsedOutput, ReasoningDelta, collect
from calculators.parsers.tags import partial_tag_length

THINK_START = "<think>"
THINK_END = "</think>"


def prompt_opens_reasoning(prompt: str) -> bool:
    """Whether a rendered prompt ends inside an open `<think>` block (the output starts in reasoning).

    True for Qwen3-Thinking / DeepSeek-R1 style templates ending in "<think>\\n"; False when the
    template closed the block itself ("<think>\\n\\n</think>\\n\\n", thinking disabled).
    """
    start = prompt.rfind(THINK_START)
    return start >= 0 and prompt.find(THINK_END, start) < 0 and not prompt[start + len(THINK_START) :].strip()


class _State(Enum):
    START = auto()  # before any decision: leading whitespace, maybe a partial <think>
    REASONING_HEAD = auto()  # right after <think>: dropping newlines
    REASONING = auto()
    CONTENT_HEAD = auto()  # right after </think>: dropping newlines
    CONTENT = auto()


class Qwen3ReasoningParser(IncrementalParser):
    name = "qwen3"

    def __init__(self, starts_in_reasoning: bool = False) -> None:
        self.starts_in_reasoning = starts_in_reasoning
        self._state = _State.START
        self._pending = ""

    def _feed(self, text: str, events: list[Event]) -> None:
        self._pending += text
        while self._step(events):
            pass

    def _finish(self, events: list[Event]) -> None:
        pending, self._pending = self._pending, ""
        if self._state is _State.START and not self.starts_in_reasoning:
            self._emit(ContentDelta, pending, events)
        elif self._state is _State.START:  # starts in reasoning: nothing but whitespace / a partial <think>
            self._emit(ReasoningDelta, pending.strip("\n"), events)
        elif self._state is _State.REASONING:  # cut short: the held newlines end the reasoning
            self._emit(ReasoningDelta, pending.rstrip("\n"), events)
        elif self._state is _State.CONTENT:
            self._emit(ContentDelta, pending, events)

    def parse(self, text: str) -> ParsedOutput:
        """The whole-text parse: the same machine fed at once (so streaming always agrees)."""
        parser = Qwen3ReasoningParser(self.starts_in_reasoning)
        return collect([*parser.feed(text), *parser.finish()])

    def _step(self, events: list[Event]) -> bool:
        """Advance one state; False when more text is needed."""
        pending = self._pending
        if self._state is _State.START:
            stripped = pending.lstrip()
            if stripped.startswith(THINK_START):
                self._pending, self._state = stripped[len(THINK_START) :], _State.REASONING_HEAD
            elif not stripped or THINK_START.startswith(stripped):
                return False
            else:
                self._state = _State.REASONING_HEAD if self.starts_in_reasoning else _State.CONTENT
            return True
        if self._state in (_State.REASONING_HEAD, _State.CONTENT_HEAD):
            self._pending = pending.lstrip("\n")
            if not self._pending:
                return False
            self._state = _State.REASONING if self._state is _State.REASONING_HEAD else _State.CONTENT
            return True
        if self._state is _State.REASONING:
            end = pending.find(THINK_END)
            if end >= 0:
                self._emit(ReasoningDelta, pending[:end].rstrip("\n"), events)
                self._pending, self._state = pending[end + len(THINK_END) :], _State.CONTENT_HEAD
                return True
            safe = pending[: len(pending) - partial_tag_length(pending, THINK_END)].rstrip("\n")
            self._emit(ReasoningDelta, safe, events)
            self._pending = pending[len(safe) :]
            return False
        # CONTENT
        self._emit(ContentDelta, pending, events)
        self._pending = ""
        return False

    @staticmethod
    def _emit(kind: type[ContentDelta] | type[ReasoningDelta], text: str, events: list[Event]) -> None:
        if text:
            events.append(kind(text))

"""`hermes3`: Hermes / Qwen tool calls, `<tool_call>\\n{"name": …, "arguments": {…}}\\n</tool_call>`.

Rules (whole-text and streaming alike):
- text outside the blocks is content; the whitespace around a valid block is dropped, except
  that the whitespace before it is kept as the separator when more content follows the block
  ("Let me check.\\n<tool_call>…</tool_call>\\n" has content "Let me check.", and
  "A\\n<tool_call>…</tool_call>\\nB" has "A\\nB");
- a block whose JSON is not a call (malformed, no name, arguments not an object) stays in the
  content verbatim, tags included, and its surrounding whitespace is kept;
- a block left open at the end (no `</tool_call>`, e.g. cut by a stop token) is a call if the
  text after `<tool_call>` is a complete valid call, else content.
"""

from __future__ import annotations

from calculators.parsers.events import Event, IdFactory, new_tool_call_id
from calculators.parsers.tags import split_before_tag
from calculators.parsers.tools import ToolParser, tool_call_from_json

START = "<tool_call>"
END = "</tool_call>"


class Hermes3ToolParser(ToolParser):
    name = "hermes3"

    def __init__(self, id_factory: IdFactory = new_tool_call_id) -> None:
        super().__init__(id_factory)
        self._pending = ""  # unemitted content text (trailing whitespace, partial start tag)
        self._in_block = False
        self._block = ""  # text after <tool_call> of the open block
        self._held_ws = ""  # whitespace before the open block
        self._gap = ""  # whitespace before the last valid call: emitted only if content follows
        self._after_call = False  # drop leading whitespace: a valid call just ended

    def _feed(self, text: str, events: list[Event]) -> None:
        searched = 0  # the part of an open block already searched for its end tag
        if self._in_block:
            searched = max(0, len(self._block) - len(END) + 1)
            self._block += text
        else:
            self._pending += text
        while True:
            if self._in_block:
                end = self._block.find(END, searched)
                searched = 0
                if end < 0:
                    return
                rest = self._block[end + len(END) :]
                self._close_block(self._block[:end], END, events)
                self._pending = rest
                continue
            if self._after_call:
                stripped = self._pending.lstrip()
                if not stripped:
                    self._pending = ""
                    return
                self._pending, self._gap, self._after_call = self._gap + stripped, "", False
            emit, held, after = split_before_tag(self._pending, START)
            self._emit_content(emit, events)
            if after is None:
                self._pending = held
                return
            self._in_block, self._block, self._held_ws, self._pending = True, after, held, ""

    def _close_block(self, inner: str, closing: str, events: list[Event]) -> None:
        call = tool_call_from_json(inner)
        if call is None:
            self._emit_content(self._held_ws + START + inner + closing, events)
            self._after_call = False
        else:
            self._emit_call(*call, events)
            self._gap, self._after_call = self._held_ws, True
        self._in_block, self._block, self._held_ws = False, "", ""

    def _finish(self, events: list[Event]) -> None:
        if self._in_block:
            self._close_block(self._block, "", events)
        else:
            self._emit_content(self._pending, events)
        self._pending = ""

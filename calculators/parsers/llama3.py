"""`llama3`: Llama 3.x JSON tool calls, `{"name": …, "parameters": {…}}`.

The calls may follow `<|python_tag|>` (decode with special tokens kept for it to be seen) and
several are separated by `;` (or just whitespace). Rules (whole-text and streaming alike):
- output that starts (after whitespace) with `{` or `<|python_tag|>` opens a run of calls;
  `<|python_tag|>` later in the text opens one too, the text before it being content;
- each complete object that is a call (`name` + `parameters`/`arguments` object) is a tool call;
  whitespace around calls and a dangling `;` at the end are dropped (the whitespace before the
  first call of a run is kept as the separator when content follows the run);
- the first object that is not a call (malformed JSON, an ordinary JSON answer, a truncated
  object), or other text where a call was expected, is content from there on, verbatim.
"""

from __future__ import annotations

from enum import Enum, auto

from calculators.parsers.events import Event, IdFactory, new_tool_call_id
from calculators.parsers.tags import split_before_tag
from calculators.parsers.tools import ToolParser, tool_call_from_json

PYTHON_TAG = "<|python_tag|>"


class _State(Enum):
    START = auto()  # nothing decided yet: leading whitespace, maybe a partial python tag
    TEXT = auto()  # content; a python tag opens calls
    EXPECT = auto()  # a call may come next (after the tag or a separator)
    OBJECT = auto()  # inside a JSON object, waiting for its closing brace
    AFTER = auto()  # a call just ended: a separator, another call or content may follow


class Llama3JsonToolParser(ToolParser):
    name = "llama3"

    def __init__(self, id_factory: IdFactory = new_tool_call_id) -> None:
        super().__init__(id_factory)
        self._state = _State.START
        self._pending = ""  # text not yet consumed by the current state
        self._raw = ""  # consumed text restored verbatim if no call follows (tag, whitespace, ';')
        self._gap = ""  # whitespace between content and a run of calls: emitted only if content follows
        # brace scanner over _pending while in OBJECT
        self._scanned = 0
        self._depth = 0
        self._in_string = False
        self._escape = False

    def _feed(self, text: str, events: list[Event]) -> None:
        self._pending += text
        while self._step(events):
            pass

    def _step(self, events: list[Event]) -> bool:
        """Advance one state; False when more text is needed."""
        pending = self._pending
        if self._state is _State.START:
            stripped = pending.lstrip()
            if stripped.startswith("{"):
                self._state = _State.EXPECT
            elif stripped.startswith(PYTHON_TAG):
                cut = len(pending) - len(stripped) + len(PYTHON_TAG)
                self._raw, self._pending, self._state = pending[:cut], pending[cut:], _State.EXPECT
            elif not stripped or PYTHON_TAG.startswith(stripped):
                return False
            else:
                self._state = _State.TEXT
            return True
        if self._state is _State.TEXT:
            emit, held, after = split_before_tag(pending, PYTHON_TAG)
            self._emit_content(emit, events)
            if after is None:
                self._pending = held
                return False
            self._gap, self._raw, self._pending, self._state = held, PYTHON_TAG, after, _State.EXPECT
            return True
        if self._state is _State.EXPECT:
            stripped = pending.lstrip()
            self._raw += pending[: len(pending) - len(stripped)]
            self._pending = stripped
            if not stripped:
                return False
            if stripped.startswith("{"):
                self._state = _State.OBJECT
                self._scanned, self._depth, self._in_string, self._escape = 0, 0, False, False
            else:
                self._emit_content(self._gap + self._raw, events)
                self._gap, self._raw, self._state = "", "", _State.TEXT
            return True
        if self._state is _State.OBJECT:
            end = self._scan_object_end()
            if end < 0:
                return False
            obj, self._pending = pending[: end + 1], pending[end + 1 :]
            call = tool_call_from_json(obj)
            if call is None:
                self._emit_content(self._gap + self._raw + obj, events)
                self._gap, self._state = "", _State.TEXT
            else:
                self._emit_call(*call, events)
                self._state = _State.AFTER
            self._raw = ""
            return True
        # AFTER
        stripped = pending.lstrip()
        self._pending = stripped
        if not stripped:
            return False
        if stripped.startswith(";"):
            self._raw, self._pending, self._state = ";", stripped[1:], _State.EXPECT
        elif stripped.startswith("{"):
            self._state = _State.EXPECT
        else:
            self._pending, self._gap, self._state = self._gap + stripped, "", _State.TEXT
        return True

    def _scan_object_end(self) -> int:
        """Index in _pending of the brace closing the object it starts with, or -1 (so far)."""
        text = self._pending
        for i in range(self._scanned, len(text)):
            char = text[i]
            if self._in_string:
                if self._escape:
                    self._escape = False
                elif char == "\\":
                    self._escape = True
                elif char == '"':
                    self._in_string = False
            elif char == '"':
                self._in_string = True
            elif char == "{":
                self._depth += 1
            elif char == "}":
                self._depth -= 1
                if self._depth == 0:
                    return i
        self._scanned = len(text)
        return -1

    def _finish(self, events: list[Event]) -> None:
        state, restore = self._state, self._gap + self._raw + self._pending
        if state in (_State.START, _State.TEXT, _State.OBJECT):
            self._emit_content(restore, events)
        elif state is _State.EXPECT and not self._raw.startswith(";"):  # a dangling ';' after a call is dropped
            self._emit_content(restore, events)
        self._pending = self._raw = self._gap = ""

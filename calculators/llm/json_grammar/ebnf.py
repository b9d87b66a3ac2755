"""The EBNF pieces every part of the JSON grammar uses: literals, repetition suffixes, the
compact separators, and the error that makes the caller fall back to genai's own json_schema."""

from __future__ import annotations

MAX_DIGITS = 16  # integer and fraction digits of a number
COLON = '":" " "?'
COMMA = '"," " "?'


class Unsupported(ValueError):
    """A schema feature this converter does not express; the message names it."""


def literal(text: str) -> str:
    """An EBNF string literal matching `text` exactly."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def count_suffix(low: int, high: int | None) -> str:
    """An EBNF repetition suffix for low..high times (high None: unbounded)."""
    if high is None:
        return "*" if low == 0 else "+" if low == 1 else f"{{{low},}}"
    return "?" if (low, high) == (0, 1) else f"{{{low}}}" if low == high else f"{{{low},{high}}}"

"""Integer ranges as EBNF digit patterns (JSON Schema minimum/maximum on an integer)."""

from __future__ import annotations

import math
from typing import Any

from calculators.llm.json_grammar.ebnf import MAX_DIGITS, Unsupported, count_suffix


def integer_bound(value: Any, up: bool) -> int:
    """An integer bound from a JSON number: rounded up for a lower bound, down for an upper one."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Unsupported("a non-numeric bound")
    return math.ceil(value) if up else math.floor(value)


def _same_length(a: str, b: str) -> list[str]:
    """Digit patterns for a..b, both of the same length (a <= b)."""
    if not a:
        return [""]
    if a[0] == b[0]:
        return [f'"{a[0]}" {x}'.strip() for x in _same_length(a[1:], b[1:])]
    rest = len(a) - 1
    tail = " [0-9]" * rest  # spelled out: see _uint_range
    out, lo, hi = [], int(a[0]), int(b[0])
    if a[1:] != "0" * rest:
        out += [f'"{a[0]}" {x}'.strip() for x in _same_length(a[1:], "9" * rest)]
        lo += 1
    if b[1:] != "9" * rest:
        hi -= 1
    if lo <= hi:
        out.append(f"[{lo}-{hi}]{tail}")
    if b[1:] != "9" * rest:
        out += [f'"{b[0]}" {x}'.strip() for x in _same_length("0" * rest, b[1:])]
    return out


def _uint_range(low: int, high: int | None) -> list[str]:
    """Alternatives for the unsigned integers low..high (high None: up to MAX_DIGITS digits).
    Whole digit lengths share one alternative (`[1-9] [0-9]{a,b}`): besides being short, a
    long list of `[1-9] [0-9]{k}` alternatives let xgrammar 2026.4 accept unbounded digits."""
    out = []
    top = 10**MAX_DIGITS - 1 if high is None else high
    digits = len(str(low))
    full: list[int] = []  # digit lengths covered whole
    while low <= top:
        end = min(top, 10**digits - 1)
        if digits > 1 and low == 10 ** (digits - 1) and end == 10**digits - 1:
            full.append(digits)
        else:
            out += _same_length(str(low), str(end))
        low, digits = end + 1, digits + 1
    if full:
        out.append(f"[1-9] [0-9]{count_suffix(full[0] - 1, full[-1] - 1)}")
    return out


def int_range(low: int | None, high: int | None) -> str:
    """EBNF for the integers low..high (either may be None: unbounded)."""
    if low is not None and high is not None and low > high:
        raise Unsupported("minimum above maximum")
    alts = []
    if low is None or low < 0:  # negatives: "-" then high'..low' of the magnitude
        neg_low = 1 if high is None or high >= 0 else -high
        neg_high = None if low is None else -low
        alts += [f'"-" {x}' for x in _uint_range(neg_low, neg_high)]
    if high is None or high >= 0:
        alts += _uint_range(max(low or 0, 0), high)
    return " | ".join(f"({a})" for a in alts)

"""A JSON Schema `pattern` (a Python regex, anchored) as EBNF inside a JSON string: the common
subset (classes, groups, alternation, repeats); anything else raises Unsupported."""

from __future__ import annotations

import json
import re
from typing import Any

try:  # the regex parser behind `re` (3.11+ name first)
    from re import _constants as sre_c  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_constants as sre_c  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

from calculators.llm.json_grammar.ebnf import Unsupported, count_suffix, literal

_SPECIAL = {ord('"'), ord("\\")}
_CLASS_ESCAPE = set('^$\\.*+?()[]{}|/-"')
_CATEGORIES = {
    sre_c.CATEGORY_DIGIT: [(0x30, 0x39)],
    sre_c.CATEGORY_WORD: [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
    sre_c.CATEGORY_SPACE: [(0x20, 0x20)],  # tabs and newlines would be control characters
}
_NOT_CATEGORIES = {
    sre_c.CATEGORY_NOT_DIGIT: sre_c.CATEGORY_DIGIT,
    sre_c.CATEGORY_NOT_WORD: sre_c.CATEGORY_WORD,
    sre_c.CATEGORY_NOT_SPACE: sre_c.CATEGORY_SPACE,
}
_STRING_CHARS = r'[^"\\\x00-\x1f]'


def _char_escaped(code: int) -> str:
    """A JSON string's text for one character, as an EBNF literal."""
    if code < 0x20:
        raise Unsupported("a control character in a pattern")
    return literal(json.dumps(chr(code))[1:-1])


def _class_char(code: int) -> str:
    ch = chr(code)
    return "\\" + ch if ch in _CLASS_ESCAPE else ch


def _ranges_to_ebnf(ranges: list[tuple[int, int]]) -> str:
    """A positive set of code points as EBNF: a class of the plain ones, `\\"` and `\\\\` escaped."""
    plain: list[tuple[int, int]] = []
    escaped = []
    for lo, hi in sorted(ranges):
        lo = max(lo, 0x20)
        cuts = sorted(c for c in _SPECIAL if lo <= c <= hi)
        for c in cuts:
            if lo <= c - 1:
                plain.append((lo, c - 1))
            escaped.append(_char_escaped(c))
            lo = c + 1
        if lo <= hi:
            plain.append((lo, hi))
    alts = list(dict.fromkeys(escaped))
    if plain:
        body = "".join(_class_char(lo) if lo == hi else f"{_class_char(lo)}-{_class_char(hi)}" for lo, hi in plain)
        alts.insert(0, f"[{body}]")
    if not alts:
        raise Unsupported("a pattern class with no JSON string character")
    return alts[0] if len(alts) == 1 else "(" + " | ".join(alts) + ")"


def _class(items: list[tuple[Any, Any]]) -> str:
    negate = False
    ranges: list[tuple[int, int]] = []
    for op, arg in items:
        if op is sre_c.NEGATE:
            negate = True
        elif op is sre_c.LITERAL:
            ranges.append((arg, arg))
        elif op is sre_c.RANGE:
            ranges.append(arg)
        elif op is sre_c.CATEGORY and arg in _CATEGORIES:
            ranges += _CATEGORIES[arg] if not (negate and arg == sre_c.CATEGORY_SPACE) else [(0x20, 0x20), (0x09, 0x0D)]
        elif op is sre_c.CATEGORY and arg in _NOT_CATEGORIES and not negate and len(items) == 1:
            return _negated(_CATEGORIES[_NOT_CATEGORIES[arg]])
        else:
            raise Unsupported(f"pattern class item {op}")
    return _negated(ranges) if negate else _ranges_to_ebnf(ranges)


def _negated(ranges: list[tuple[int, int]]) -> str:
    """Any JSON string character but these (quotes, backslashes and controls are left out)."""
    body = "".join(_class_char(lo) if lo == hi else f"{_class_char(lo)}-{_class_char(hi)}" for lo, hi in ranges if hi >= 0x20)
    return f'[^{body}"\\\\\\x00-\\x1f]'


def _seq(items: Any, top: bool) -> str:
    out = []
    n = len(items)
    for i, (op, arg) in enumerate(items):
        if op is sre_c.LITERAL:
            out.append(_char_escaped(arg))
        elif op is sre_c.NOT_LITERAL:
            out.append(_negated([(arg, arg)]))
        elif op is sre_c.ANY:
            out.append(_STRING_CHARS)
        elif op is sre_c.IN:
            out.append(_class(arg))
        elif op is sre_c.CATEGORY:
            out.append(_class([(op, arg)]))
        elif op is sre_c.BRANCH:
            out.append("(" + " | ".join(_seq(b, False) or '""' for b in arg[1]) + ")")
        elif op is sre_c.SUBPATTERN:
            _group, add_flags, del_flags, sub = arg
            if add_flags or del_flags:
                raise Unsupported("pattern flags")
            out.append("(" + (_seq(sub, False) or '""') + ")")
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT):
            low, high, sub = arg
            inner = _seq(sub, False) or '""'
            out.append(f"({inner}){count_suffix(low, None if high == sre_c.MAXREPEAT else high)}")
        elif (
            op is sre_c.AT
            and top
            and (
                (i == 0 and arg in (sre_c.AT_BEGINNING, sre_c.AT_BEGINNING_STRING))
                or (i == n - 1 and arg in (sre_c.AT_END, sre_c.AT_END_STRING))
            )
        ):
            continue  # the grammar matches the whole string anyway
        else:
            raise Unsupported(f"pattern construct {str(op).lower()}")
    return " ".join(out)


def regex_to_ebnf(pattern: str) -> str:
    """The JSON string text (between the quotes) of strings that fully match `pattern`."""
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, OverflowError, RecursionError) as exc:
        raise Unsupported("a pattern Python cannot parse") from exc
    if parsed.state.flags & ~(re.UNICODE):
        raise Unsupported("pattern flags")
    return _seq(list(parsed), True) or '""'

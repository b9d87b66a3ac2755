"""A complexity budget for structured output, checked before the engine compiles a grammar.

openvino-genai compiles a request's grammar (xgrammar) inside an engine step, in native code
that nothing can interrupt: while it runs, every request of the servable waits. Some short
schemas cost minutes (a 20-byte `pattern` `((a|b){150}){150}` took ~36 s), so what a schema
may ask for is bounded here, each limit named in the 400.

Calibrated on the engine itself (2 cores, the tiny model's vocabulary, compile time of the first
step of a request): a single bounded repeat is cheap at any size (xgrammar keeps a
repeat rule: `(a|b){100000}`, `maxLength` 100000 and `maxItems` 100000 each compile in < 0.05 s),
but repeats nested in repeats are expanded: `((a|b){50}){50}` 0.32 s, `((a|b|c|d){50}){50}`
0.45 s, `((a|b){100}){100}` 4.4 s. Optional properties cost about quadratically per object
(200: 0.06 s, 1000: 0.7 s, 4000: 14 s; 5 objects of 200: 0.44 s). Enum text costs by its length
(1000 values of 64 characters: 1.0 s; 4000 short words: 0.08 s). Every limit below sits at or
under ~0.3 s of compilation.
"""

from __future__ import annotations

import json
import re
from typing import Any

try:  # the regex parser behind `re` (3.11+ name first)
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_parse  # type: ignore[no-redef]

MAX_REPEAT = 100_000  # one count: a regex {m,n}, minLength/maxLength, minItems/maxItems, ...
MAX_REPETITION_PRODUCT = 2_000  # regex repeats nested in repeats, unrolled (see pattern_cost); summed over the schema
MAX_PROPERTIES = 200  # declared properties of one object
MAX_TOTAL_PROPERTIES = 500  # declared properties in the whole schema
MAX_ENUM_VALUES = 1_000  # values of one enum
MAX_ENUM_TEXT = 16_384  # characters of all enum and const values (as JSON)
MAX_SCHEMA_TEXT = 131_072  # characters of the whole schema (as JSON)
MAX_SUBSCHEMAS = 2_000  # subschemas in the whole schema
MAX_PATTERN_LENGTH = 4_096  # characters of one pattern

_COUNTS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
# An unbounded repeat is a loop rule for xgrammar, not an expansion: `*` and `+` count as this
# small factor when nested, `{n,}` as n.
_LOOP_FACTOR = 1
_REPEATS = {sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT, getattr(sre_parse, "POSSESSIVE_REPEAT", sre_parse.MAX_REPEAT)}


class BudgetExceeded(ValueError):
    """A schema over the budget; the message names the limit and its value."""


def _factor(low: int, high: int) -> int:
    if high == sre_parse.MAXREPEAT:
        return max(low, _LOOP_FACTOR)
    return high


def _largest_count(items: Any) -> int:
    """The largest bounded count of any repeat in a parsed pattern."""
    largest = 0
    for op, arg in items:
        if op in _REPEATS:
            low, high, sub = arg
            largest = max(largest, low, 0 if high == sre_parse.MAXREPEAT else high, _largest_count(sub))
        else:
            for sub in _children(op, arg):
                largest = max(largest, _largest_count(sub))
    return largest


def _children(op: Any, arg: Any) -> list[Any]:
    """The sub-patterns of one parsed node (groups, branches, assertions)."""
    if op == sre_parse.SUBPATTERN:
        return [arg[-1]]
    if op == sre_parse.BRANCH:
        return list(arg[1])
    if op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
        return [arg[1]]
    if op == getattr(sre_parse, "ATOMIC_GROUP", None):
        return [arg]
    if op == sre_parse.GROUPREF_EXISTS:
        return [branch for branch in arg[1:] if branch is not None]
    return []


def _size(items: Any) -> tuple[int, int]:
    """(size, nesting) of a parsed pattern unrolled: a literal or class is 1, a sequence or a
    branch the sum of its parts, a repeat its count times its body; nesting counts repeats in
    repeats. An estimate of the states xgrammar expands."""
    size, nesting = 0, 0
    for op, arg in items:
        if op in _REPEATS:
            low, high, sub = arg
            inner, depth = _size(sub)
            size += _factor(low, high) * max(inner, 1)
            nesting = max(nesting, depth + 1)
        else:
            children = _children(op, arg)
            if not children:
                size += 1
            for sub in children:
                inner, depth = _size(sub)
                size += inner
                nesting = max(nesting, depth)
    return size, nesting


def _nested_cost(items: Any) -> int:
    """The unrolled size of every outermost repeat that holds another repeat, summed."""
    cost = 0
    for op, arg in items:
        if op in _REPEATS:
            size, nesting = _size([(op, arg)])
            if nesting >= 2:
                cost += size
        else:
            cost += sum(_nested_cost(sub) for sub in _children(op, arg))
    return cost


def pattern_cost(pattern: str) -> tuple[int, int]:
    """(largest single repeat count, repetition product) of a regex. The product is the unrolled
    size of repeats nested in repeats (counts multiplied, times the width of what they repeat);
    0 when no repeat sits inside another: a single repeat is cheap for the compiler."""
    parsed = sre_parse.parse(pattern)
    return _largest_count(parsed), _nested_cost(parsed)


class _Tally:
    def __init__(self) -> None:
        self.subschemas = 0
        self.properties = 0
        self.enum_text = 0
        self.nested_product = 0


def check_budget(schema: Any) -> None:
    """Raise BudgetExceeded naming the first limit `schema` goes over. Assumes check_schema's
    structural rules held (objects where schemas go, patterns that compile)."""
    try:
        text = json.dumps(schema)
    except (TypeError, ValueError, RecursionError):
        return  # not JSON-able: the schema check and the request model report that
    if len(text) > MAX_SCHEMA_TEXT:
        raise BudgetExceeded(f"the schema is {len(text)} characters of JSON; the budget is {MAX_SCHEMA_TEXT}")
    try:
        _walk(schema, _Tally())
    except RecursionError:
        raise BudgetExceeded("the schema nests too deeply") from None


def _walk(node: Any, tally: _Tally) -> None:  # noqa: C901 - one flat list of budgets
    if isinstance(node, list):
        for item in node:
            _walk(item, tally)
        return
    if not isinstance(node, dict):
        return
    tally.subschemas += 1
    if tally.subschemas > MAX_SUBSCHEMAS:
        raise BudgetExceeded(f"the schema has more than {MAX_SUBSCHEMAS} subschemas (the budget)")
    for key in _COUNTS:
        value = node.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > MAX_REPEAT:
            raise BudgetExceeded(f"{key} is {value}; the budget for a count is {MAX_REPEAT}")
    properties = node.get("properties")
    if isinstance(properties, dict):
        if len(properties) > MAX_PROPERTIES:
            raise BudgetExceeded(f"an object declares {len(properties)} properties; the budget is {MAX_PROPERTIES} per object")
        tally.properties += len(properties)
        if tally.properties > MAX_TOTAL_PROPERTIES:
            raise BudgetExceeded(f"the schema declares more than {MAX_TOTAL_PROPERTIES} properties in all (the budget)")
    enum = node.get("enum")
    if isinstance(enum, list) and len(enum) > MAX_ENUM_VALUES:
        raise BudgetExceeded(f"an enum has {len(enum)} values; the budget is {MAX_ENUM_VALUES}")
    for key in ("enum", "const"):
        if key in node:
            tally.enum_text += len(json.dumps(node[key]))
            if tally.enum_text > MAX_ENUM_TEXT:
                raise BudgetExceeded(f"enum and const values take more than {MAX_ENUM_TEXT} characters of JSON (the budget)")
    patterns = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
    if isinstance(node.get("patternProperties"), dict):
        patterns += [key for key in node["patternProperties"] if isinstance(key, str)]
    for pattern in patterns:
        _check_pattern(pattern, tally)
    for key, value in node.items():
        if key in ("enum", "const", "default", "examples", "pattern"):
            continue  # values, not schemas
        if key in ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas") and isinstance(value, dict):
            _walk(list(value.values()), tally)
        elif isinstance(value, dict | list):
            _walk(value, tally)


def _check_pattern(pattern: str, tally: _Tally) -> None:
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise BudgetExceeded(f"a pattern is {len(pattern)} characters; the budget is {MAX_PATTERN_LENGTH}")
    try:
        largest, product = pattern_cost(pattern)
    except (re.error, RecursionError, OverflowError):
        return  # check_schema reports an invalid pattern
    if largest > MAX_REPEAT:
        raise BudgetExceeded(f"pattern {pattern[:80]!r} repeats {largest} times; the budget for a count is {MAX_REPEAT}")
    tally.nested_product += product
    if product > MAX_REPETITION_PRODUCT:
        raise BudgetExceeded(
            f"pattern {pattern[:80]!r} nests repeats in repeats (repetition product {product}); "
            f"the repetition-product budget is {MAX_REPETITION_PRODUCT}"
        )
    if tally.nested_product > MAX_REPETITION_PRODUCT:
        raise BudgetExceeded(
            f"the schema's patterns nest repeats in repeats (repetition product {tally.nested_product} in all); "
            f"the repetition-product budget is {MAX_REPETITION_PRODUCT}"
        )

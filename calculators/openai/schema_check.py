"""A JSON schema that the engine's grammar compiler (xgrammar inside openvino-genai) would refuse
is a 400 here, before it reaches the engine: there it fails the whole engine step.

The check is conservative, not a full JSON Schema validator: it refuses what we saw the compiler
refuse (keywords of the wrong kind, unknown types, empty `enum`/`anyOf`, impossible ranges,
unresolvable local `$ref`s, regex features it lacks, counts that its strict mode cannot meet).
Whatever slips through still fails only the requests of that step: the worker then starts a
fresh pipeline (calculators/llm/engine/cb_loop.py).
"""

from __future__ import annotations

import re
from typing import Any

from calculators.openai.schema_budget import BudgetExceeded, check_budget
from graphs.errors import InvalidRequestError

MAX_DEPTH = 64  # nesting of subschemas; deeper is refused (and json.dumps recursion is never reached)
_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})
_SCHEMA = ("not", "if", "then", "else", "items", "additionalProperties", "contains", "propertyNames", "unevaluatedProperties")
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_NUMBERS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_COUNTS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
_RANGES = (("minimum", "maximum"), ("minLength", "maxLength"), ("minItems", "maxItems"), ("minProperties", "maxProperties"))
_OPEN_RANGES = (("exclusiveMinimum", "exclusiveMaximum"), ("minimum", "exclusiveMaximum"), ("exclusiveMinimum", "maximum"))
_INT64 = 2.0**63
# Regex syntax the grammar compiler does not support (beyond what Python's re refuses itself).
_UNSUPPORTED_REGEX = re.compile(r"\(\?[=!<]|\(\?[a-zA-Z]|\\[1-9]|\\[pPkbB]|[*+?}]\+")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _resolve(root: Any, ref: str) -> Any:
    node = root
    for raw in ref[1:].split("/")[1:] if ref != "#" else []:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def check_schema(schema: Any, param: str) -> None:
    """Raise a 400 naming `param` when the engine could not compile `schema`, or could only
    at a cost over the complexity budget (schema_budget.py)."""
    problem = _problem(schema, schema, 0)
    if problem is not None:
        raise InvalidRequestError(f"the JSON schema cannot be used for structured output: {problem}", param=param)
    try:
        check_budget(schema)
    except BudgetExceeded as exc:
        raise InvalidRequestError(f"the JSON schema is over the structured-output complexity budget: {exc}", param=param) from None


def _problem(node: Any, root: Any, depth: int) -> str | None:  # noqa: C901 - one flat list of rules
    if isinstance(node, bool):
        return None
    if not isinstance(node, dict):
        return f"a schema must be an object or a boolean, not {type(node).__name__}"
    if depth > MAX_DEPTH:
        return f"schemas nested deeper than {MAX_DEPTH} levels"
    kind = node.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    if not all(isinstance(k, str) and k in _TYPES for k in kinds):
        return f"type must be one of {', '.join(sorted(_TYPES))} (or a list of them)"
    if "enum" in node and not (isinstance(node["enum"], list) and node["enum"]):
        return "enum must be a non-empty list"
    if "required" in node and not (isinstance(node["required"], list) and all(isinstance(r, str) for r in node["required"])):
        return "required must be a list of strings"
    for key in _NUMBERS:
        if key in node and not _is_number(node[key]):
            return f"{key} must be a number"
        if key in node and "integer" in kinds and (abs(node[key]) >= _INT64 or node[key] != int(node[key])):
            return f"{key} of an integer must be a whole number within 64 bits"
    for key in _COUNTS:
        if key in node and not (isinstance(node[key], int) and not isinstance(node[key], bool) and 0 <= node[key] < _INT64):
            return f"{key} must be a non-negative integer"
    for low, high in _RANGES:
        if low in node and high in node and node[low] > node[high]:
            return f"{low} is greater than {high}"
    for low, high in _OPEN_RANGES:
        if low in node and high in node and node[low] >= node[high]:
            return f"{low} leaves nothing below {high}"
    # Strict mode: no items or properties beyond the declared ones.
    if node.get("minItems", 0) > len(node.get("prefixItems") or []) and node.get("items", False) is False:
        return "minItems needs items (no undeclared items are generated)"
    if node.get("minProperties", 0) > len(node.get("properties") or {}) and node.get("additionalProperties", False) is False:
        return "minProperties needs additionalProperties (no undeclared properties are generated)"
    patterns = [node["pattern"]] if "pattern" in node else []
    if isinstance(node.get("patternProperties"), dict):
        patterns += list(node["patternProperties"])
    for pattern in patterns:
        if not isinstance(pattern, str):
            return "pattern must be a string"
        try:
            re.compile(pattern)
        except (re.error, RecursionError, OverflowError) as exc:
            return f"pattern {pattern!r} is not a valid regular expression: {exc}"
        if _UNSUPPORTED_REGEX.search(pattern):
            return f"pattern {pattern!r} uses regex syntax the grammar compiler lacks (look-around, \\1, (?i), \\b, a++, \\p)"
    ref = node.get("$ref")
    if ref is not None:
        if not isinstance(ref, str):
            return "$ref must be a string"
        if ref.startswith("#"):
            target = _resolve(root, ref)
            if not isinstance(target, dict | bool):
                return f"$ref {ref!r} does not point to a schema in this document"
    children: list[Any] = [node[key] for key in _SCHEMA if key in node]
    for key in _SCHEMA_MAPS:
        if key in node:
            if not isinstance(node[key], dict):
                return f"{key} must be an object of schemas"
            children += list(node[key].values())
    for key in _SCHEMA_LISTS:
        if key in node:
            if not (isinstance(node[key], list) and (node[key] or key == "prefixItems")):
                return f"{key} must be a non-empty list of schemas"
            children += node[key]
    for child in children:
        problem = _problem(child, root, depth + 1)
        if problem is not None:
            return problem
    return None

"""The schema walk: JSON Schema -> rules of compact JSON (objects, arrays, strings, numbers,
combinators, $ref), with the basic JSON rules and string formats they build on."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from calculators.llm.json_grammar.ebnf import COLON, COMMA, MAX_DIGITS, Unsupported, count_suffix, literal
from calculators.llm.json_grammar.numbers import int_range, integer_bound
from calculators.llm.json_grammar.regex import regex_to_ebnf

# Keywords that only annotate: ignored.
_ANNOTATIONS = {
    "title",
    "description",
    "default",
    "examples",
    "$schema",
    "$id",
    "$comment",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$defs",
    "definitions",
    "strict",
    "name",
}
_BY_TYPE = {
    "object": {"properties", "required", "additionalProperties"},
    "array": {"items", "prefixItems", "minItems", "maxItems"},
    "string": {"minLength", "maxLength", "pattern", "format"},
    "integer": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"},
    "number": {"minimum", "exclusiveMinimum"},
    "boolean": set(),
    "null": set(),
}
_COMBINATORS = {"anyOf", "oneOf", "allOf", "$ref", "enum", "const", "type", "nullable"}

_BASIC = (
    r"""json_value ::= json_object | json_array | json_string | json_number | "true" | "false" | "null"
json_object ::= "{" (json_string COLON json_value (COMMA json_string COLON json_value)*)? "}"
json_array ::= "[" (json_value (COMMA json_value)*)? "]"
json_string ::= "\"" json_char* "\""
json_char ::= [^"\\\x00-\x1f] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})
json_int ::= "-"? ("0" | [1-9] [0-9]{0,DIGITS})
json_number ::= json_int ("." [0-9]{1,FRAC})? ([eE] [+-]? [0-9]{1,2})?
json_boolean ::= "true" | "false"
json_null ::= "null"
""".replace("COLON", COLON)
    .replace("COMMA", COMMA)
    .replace("DIGITS", str(MAX_DIGITS - 1))
    .replace("FRAC", str(MAX_DIGITS))
)

_FORMATS = {
    "date": r'[0-9]{4} "-" ("0" [1-9] | "1" [0-2]) "-" ("0" [1-9] | [12] [0-9] | "3" [01])',
    "time": r'([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ("." [0-9]{1,6})? '
    r'("Z" | [+\-] ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9])',
    "uuid": r'[0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{12}',
    # Unbounded repeats: bounded class repeats ({1,63}) cost ~1.8 s to compile on SmolLM2's vocabulary.
    "email": r'[a-zA-Z0-9_%+\-] [a-zA-Z0-9._%+\-]* "@" [a-zA-Z0-9\-]+ ("." [a-zA-Z0-9\-]+)+',
}
_FORMATS["date-time"] = _FORMATS["date"] + ' "T" ' + _FORMATS["time"]


def _json_literal(value: Any) -> str:
    try:
        return literal(json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False))
    except ValueError as exc:
        raise Unsupported("NaN or Infinity in enum/const") from exc


def _repeat(item: str, low: int, high: int | None) -> str:
    """`item` repeated low..high times (high None: unbounded), comma-separated."""
    if high is not None and high < low:
        raise Unsupported("minItems above maxItems")
    if high == 0:
        return ""
    rest = f"({COMMA} {item})" + count_suffix(max(low - 1, 0), None if high is None else high - 1)
    body = f"{item} {rest}"
    return body if low > 0 else f"({body})?"


class _Converter:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.rules: dict[str, str] = {}
        self.refs: dict[str, str] = {}  # $ref pointer -> rule name
        self.seen: dict[str, str] = {}  # a subschema's JSON -> rule name (identical ones share)

    def rule(self, schema: Any, hint: str) -> str:
        """The name of a rule matching `schema`."""
        key = json.dumps(schema, sort_keys=True)
        if key in self.seen:
            return self.seen[key]
        name = self._name(hint)
        self.seen[key] = name
        self.rules[name] = ""  # reserved while its body is built
        body = self.body(schema, name)
        if re.fullmatch(r"[A-Za-z_]\w*", body):  # just another rule: use that one
            del self.rules[name]
            self.seen[key] = body
            return body
        self.rules[name] = body
        return name

    def _name(self, hint: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", hint)[:40] or "r"
        if not base[0].isalpha():
            base = "r" + base
        name, i = base, 1
        while name in self.rules or name.startswith("json_"):
            name, i = f"{base}_{i}", i + 1
        return name

    def body(self, schema: Any, name: str) -> str:
        if schema is True or schema == {}:
            return "json_value"
        if not isinstance(schema, dict):
            raise Unsupported(f"schema {json.dumps(schema)[:40]}")
        unknown = set(schema) - _ANNOTATIONS - _COMBINATORS - set().union(*_BY_TYPE.values())
        if unknown:
            raise Unsupported(f"keyword {sorted(unknown)[0]}")
        if "$ref" in schema:
            if len(set(schema) - _ANNOTATIONS) > 1:
                raise Unsupported("$ref beside other keywords")
            return self.ref(schema["$ref"])
        if "nullable" in schema:
            rest = {k: v for k, v in schema.items() if k != "nullable"}
            return f"{self.rule(rest, name + '_v')} | json_null" if schema["nullable"] is True else self.body(rest, name)
        if not set(schema) - _ANNOTATIONS:
            return "json_value"
        if "const" in schema:
            return _json_literal(schema["const"])
        if "enum" in schema:
            values = schema["enum"]
            if not isinstance(values, list) or not values:
                raise Unsupported("empty enum")
            return " | ".join(_json_literal(v) for v in values)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = schema[key]
                if not isinstance(options, list) or not options or len(set(schema) - _ANNOTATIONS - {key}) > 0:
                    raise Unsupported(f"{key} beside other keywords")
                return " | ".join(self.rule(s, f"{name}_{i}") for i, s in enumerate(options))
        if "allOf" in schema:
            return self.body(self.merge(schema), name)
        kind = schema.get("type")
        if isinstance(kind, list):
            if not kind:
                raise Unsupported("empty type list")
            # Each type keeps the keywords that apply to it (maxLength is for the string only).
            own = _ANNOTATIONS | _COMBINATORS
            return " | ".join(
                self.rule({k: v for k, v in schema.items() if k in own or k in _BY_TYPE.get(t, set())} | {"type": t}, f"{name}_{t}")
                for t in kind
            )
        if kind is None:
            kind = self.infer(schema)
        if kind not in _BY_TYPE:
            raise Unsupported(f"type {kind!r}")
        extra = set(schema) - _ANNOTATIONS - _COMBINATORS - _BY_TYPE[kind]
        if extra:
            raise Unsupported(f"{sorted(extra)[0]} on type {kind}")
        return getattr(self, "t_" + kind)(schema, name)  # type: ignore[no-any-return]

    @staticmethod
    def infer(schema: dict[str, Any]) -> str:
        keys = set(schema) - _ANNOTATIONS
        for kind in ("object", "array", "string"):
            if keys & _BY_TYPE[kind]:
                return kind
        if keys & _BY_TYPE["integer"]:
            return "number"
        raise Unsupported("a schema without type")

    def ref(self, pointer: Any) -> str:
        if not isinstance(pointer, str) or not pointer.startswith("#"):
            raise Unsupported("$ref outside the schema")
        if pointer not in self.refs:
            target: Any = self.root
            for part in [p for p in pointer[1:].split("/") if p]:
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(target, dict) or part not in target:
                    raise Unsupported(f"dangling $ref {pointer}")
                target = target[part]
            self.refs[pointer] = name = self._name("ref_" + (pointer.rsplit("/", 1)[-1] or "root"))
            self.rules[name] = ""
            self.rules[name] = self.body(target, name)
        return self.refs[pointer]

    def merge(self, schema: dict[str, Any]) -> dict[str, Any]:
        """allOf of object schemas as one object schema."""
        merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        parts = [{k: v for k, v in schema.items() if k != "allOf"}, *schema["allOf"]]
        for part in parts:
            while isinstance(part, dict) and "$ref" in part:
                part = self._resolve(part["$ref"])
            if not isinstance(part, dict):
                raise Unsupported("allOf of a non-object")
            part = {k: v for k, v in part.items() if k not in _ANNOTATIONS}
            if not part:
                continue
            if part.get("type", "object") != "object" or set(part) - {"type", "properties", "required", "additionalProperties"}:
                raise Unsupported("allOf beyond objects")
            merged["properties"].update(part.get("properties", {}))
            merged["required"] += [r for r in part.get("required", []) if r not in merged["required"]]
            if "additionalProperties" in part:
                merged["additionalProperties"] = part["additionalProperties"]
        return merged

    def _resolve(self, pointer: str) -> Any:
        target: Any = self.root
        for part in [p for p in pointer.lstrip("#").split("/") if p]:
            if not isinstance(target, dict) or part not in target:
                raise Unsupported(f"dangling $ref {pointer}")
            target = target[part]
        return target

    # -- types ---------------------------------------------------------------------------

    def t_null(self, schema: dict[str, Any], name: str) -> str:
        return "json_null"

    def t_boolean(self, schema: dict[str, Any], name: str) -> str:
        return "json_boolean"

    def t_object(self, schema: dict[str, Any], name: str) -> str:
        props = schema.get("properties", {})
        required = schema.get("required", [])
        if not isinstance(props, dict) or not isinstance(required, list) or set(required) - set(props):
            raise Unsupported("required property not declared")
        extra = schema.get("additionalProperties", not props)
        if not props and extra is True:
            return "json_object"
        # (text, required); None for the extra pairs: any number of them, last.
        items: list[tuple[str, bool | None]] = [
            (f"{literal(json.dumps(k, ensure_ascii=False))} {COLON} {self.rule(v, f'{name}_{k}')}", k in required) for k, v in props.items()
        ]
        if extra is not False:
            value = "json_value" if extra is True else self.rule(extra, f"{name}_extra")
            items.append((f"json_string {COLON} {value}", None))
        if not items:
            return '"{" "}"'
        # r_i: items i.. once one is written (each behind a comma): required, optional or repeated.
        tail = ""
        for i in range(len(items) - 1, -1, -1):
            text, req = items[i]
            piece = f"({COMMA} {text})" + ("*" if req is None else "" if req else "?")
            if i:  # r_0 would never be used: the first item is written without a comma
                self.rules[f"{name}_r{i}"] = f"{piece} {tail}".strip()
            tail = f"{name}_r{i}"
        # The first one written is any up to and including the first required one.
        firsts = []
        for i, (text, req) in enumerate(items):
            after = i if req is None else i + 1  # the extra pairs repeat
            firsts.append(f"{text} {name}_r{after}" if after < len(items) else text)
            if req:
                break
        else:
            firsts.append('""')
        return '"{" (' + " | ".join(firsts) + ') "}"'

    def t_array(self, schema: dict[str, Any], name: str) -> str:
        prefix = schema.get("prefixItems", [])
        items = schema.get("items", not prefix)
        low, high = schema.get("minItems", 0), schema.get("maxItems")
        if not isinstance(low, int) or low < 0 or (high is not None and not isinstance(high, int)) or not isinstance(prefix, list):
            raise Unsupported("array bounds")
        if high is not None and high < low:
            raise Unsupported("minItems above maxItems")
        if not prefix:
            if items is False:
                return '"[" "]"'
            return f'"[" {_repeat(self.rule(items, f"{name}_item"), low, high)} "]"'.replace("  ", " ")
        heads = [self.rule(s, f"{name}_{i}") for i, s in enumerate(prefix)]
        n = len(heads) if high is None else min(len(heads), high)
        if low > n and (items is False or n < len(heads)):
            raise Unsupported("minItems beyond prefixItems")
        seq = ""
        if items is not False and (high is None or high > n):
            count = count_suffix(max(low - n, 0), None if high is None else high - n)
            seq = f"({COMMA} {self.rule(items, f'{name}_items')}){count}"
        for i in range(n - 1, -1, -1):  # nested: item i is written only after item i-1
            inner = f"{heads[i] if i == 0 else COMMA + ' ' + heads[i]} {seq}".strip()
            seq = inner if i < low else f"({inner})?"
        return f'"[" {seq} "]"'

    def t_string(self, schema: dict[str, Any], name: str) -> str:
        low, high = schema.get("minLength", 0), schema.get("maxLength")
        pattern, fmt = schema.get("pattern"), schema.get("format")
        if pattern is not None:
            if "minLength" in schema or "maxLength" in schema:
                raise Unsupported("pattern with minLength/maxLength")
            return f'"\\"" ({regex_to_ebnf(pattern)}) "\\""'
        if fmt in _FORMATS and "minLength" not in schema and "maxLength" not in schema:
            return f'"\\"" {_FORMATS[fmt]} "\\""'
        if not isinstance(low, int) or low < 0 or (high is not None and (not isinstance(high, int) or high < low)):
            raise Unsupported("string lengths")
        return f'"\\"" json_char{count_suffix(low, high)} "\\""'

    def t_integer(self, schema: dict[str, Any], name: str) -> str:
        low = None if "minimum" not in schema else integer_bound(schema["minimum"], up=True)
        high = None if "maximum" not in schema else integer_bound(schema["maximum"], up=False)
        if "exclusiveMinimum" in schema:
            low = max(low if low is not None else -(10**MAX_DIGITS), math.floor(integer_bound(schema["exclusiveMinimum"], up=False)) + 1)
        if "exclusiveMaximum" in schema:
            high = min(high if high is not None else 10**MAX_DIGITS, integer_bound(schema["exclusiveMaximum"], up=True) - 1)
        if low is None and high is None:
            return "json_int"
        return int_range(low, high)

    def t_number(self, schema: dict[str, Any], name: str) -> str:
        low = schema.get("minimum")
        if "exclusiveMinimum" in schema or (low is not None and low != 0):
            raise Unsupported("number range")
        if low == 0:  # no sign
            return f'("0" | [1-9] [0-9]{{0,{MAX_DIGITS - 1}}}) ("." [0-9]{{1,{MAX_DIGITS}}})? ([eE] [+-]? [0-9]{{1,2}})?'
        return "json_number"


def schema_to_ebnf(schema: Any) -> str:
    """The EBNF (root rule `root`) for compact JSON matching `schema`; raises Unsupported."""
    conv = _Converter(schema if isinstance(schema, dict) else {})
    try:
        root = conv.rule(schema, "root_value")
    except RecursionError as exc:
        raise Unsupported("nesting too deep") from exc
    except (TypeError, AttributeError, KeyError) as exc:  # a malformed schema: genai's checks name it
        raise Unsupported(f"a malformed schema ({type(exc).__name__})") from exc
    lines = [f"root ::= {root}"] + [f"{k} ::= {v}" for k, v in conv.rules.items()]
    return "\n".join(lines) + "\n" + _BASIC


ANY_OBJECT = schema_to_ebnf({"type": "object"})

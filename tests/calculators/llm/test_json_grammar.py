"""JSON Schema → compact-JSON EBNF (calculators/llm/json_grammar/), its place in guided.py's
grammar parts, and every grammar compiled by genai's xgrammar on the tiny model."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from calculators.llm import guided
from calculators.llm.json_grammar import ANY_OBJECT, Unsupported, int_range, literal, regex_to_ebnf, schema_to_ebnf
from calculators.openai.protocol import ChatCompletionRequest


def rules(schema: Any) -> dict[str, str]:
    return dict(line.split(" ::= ", 1) for line in schema_to_ebnf(schema).splitlines())


def root(schema: Any) -> str:
    """The root's expression (a rule that is just another rule's name is not made)."""
    found = rules(schema)
    return found.get(found["root"], found["root"]) if found["root"].startswith("root") else found["root"]


def as_regex(ebnf: str) -> str:
    """A Python regex for EBNF made of literals, classes, groups, `|` and counts (int ranges)."""
    return re.sub(r'"((?:[^"\\]|\\.)*)"', lambda m: re.escape(json.loads(f'"{m.group(1)}"')), ebnf).replace(" ", "")


def test_object_declared_properties_in_order_required_and_optional() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}, "c": {"type": "boolean"}},
        "required": ["b"],
    }
    found = rules(schema)
    body = found["root_value"]
    # The first property written is a (then b is due), or b itself: never c first, a never after b.
    assert body.startswith('"{" ("\\"a\\"" ":" " "? root_value_a root_value_r1 | "\\"b\\"" ":" " "? json_int root_value_r2)')
    assert found["root_value_r1"] == '("," " "? "\\"b\\"" ":" " "? json_int) root_value_r2'
    assert found["root_value_r2"] == '("," " "? "\\"c\\"" ":" " "? json_boolean)?'


def test_object_additional_properties() -> None:
    assert root({"type": "object"}) == "json_object"
    assert root({"type": "object", "properties": {}, "additionalProperties": False}) == '"{" "}"'
    found = rules({"type": "object", "properties": {"a": {"type": "null"}}, "additionalProperties": {"type": "integer"}})
    assert found["root_value_r1"] == '("," " "? json_string ":" " "? json_int)*'
    assert '""' in found["root_value"]  # nothing is required


def test_json_object_grammar_is_compact() -> None:
    found = dict(line.split(" ::= ", 1) for line in ANY_OBJECT.splitlines())
    assert found["root"] == "json_object"
    assert found["json_object"] == '"{" (json_string ":" " "? json_value ("," " "? json_string ":" " "? json_value)*)? "}"'
    assert "\\n" not in ANY_OBJECT and "[ \\t" not in ANY_OBJECT  # no free whitespace anywhere


def test_arrays() -> None:
    assert root({"type": "array", "items": {"type": "integer"}}) == '"[" (json_int ("," " "? json_int)*)? "]"'
    assert (
        root({"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 4}) == '"[" json_int ("," " "? json_int){1,3} "]"'
    )
    assert root({"type": "array", "items": {"type": "null"}, "maxItems": 0}) == '"[" "]"'
    tup = {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "minItems": 1}
    assert root(tup) == '"[" json_int ("," " "? root_value_1)? "]"'
    with pytest.raises(Unsupported, match="minItems above maxItems"):
        schema_to_ebnf({"type": "array", "minItems": 3, "maxItems": 1})


def test_strings() -> None:
    assert root({"type": "string", "minLength": 2, "maxLength": 5}) == '"\\"" json_char{2,5} "\\""'
    assert root({"enum": ["a", 'say "hi"', 1, None]}) == '"\\"a\\"" | "\\"say \\\\\\"hi\\\\\\"\\"" | "1" | "null"'
    assert root({"const": {"k": [1, 2]}}) == '"{\\"k\\":[1,2]}"'
    assert root({"type": "string", "format": "date"}).startswith('"\\"" [0-9]{4} "-"')
    assert root({"type": "string", "format": "no-such-format"}) == '"\\"" json_char* "\\""'  # an annotation
    chars = rules({"type": "string"})["json_char"]
    assert chars == '[^"\\\\\\x00-\\x1f] | "\\\\" (["\\\\/bfnrt] | "u" [0-9a-fA-F]{4})'  # no raw control characters


def test_literal_escapes_for_ebnf() -> None:
    assert literal('a"b\\c\n\x01é') == '"a\\"b\\\\c\\u000a\\u0001é"'


@pytest.mark.parametrize(
    ("pattern", "ebnf"),
    [
        ("^[0-9]{5}$", "([0-9]){5}"),
        ("a|bc", '("a" | "b" "c")'),
        ("(ab)+x?", '(("a" "b"))+ ("x")?'),
        ('[a"]', '([a] | "\\\\\\"")'),  # a quote inside the string is written \"
        ("[^x]", '[^x"\\\\\\x00-\\x1f]'),
        ("\\d\\w", "[0-9] [0-9A-Z_a-z]"),
        (".", '[^"\\\\\\x00-\\x1f]'),
    ],
)
def test_pattern_as_ebnf(pattern: str, ebnf: str) -> None:
    assert regex_to_ebnf(pattern) == ebnf


@pytest.mark.parametrize(("low", "high"), [(0, 120), (1, 10), (-15, 7), (-300, -20), (95, 1005), (None, 42), (-7, None), (3, None)])
def test_integer_ranges_match_exactly_their_integers(low: int | None, high: int | None) -> None:
    matcher = re.compile(as_regex(int_range(low, high)))
    for n in range(-2000, 2001):
        inside = (low is None or n >= low) and (high is None or n <= high)
        assert bool(matcher.fullmatch(str(n))) == inside, n
    assert not matcher.fullmatch("007") and not matcher.fullmatch("-0")


TREE = {"$defs": {"n": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/n"}}}}}, "$ref": "#/$defs/n"}


def test_type_lists_nullable_anyof_allof_ref() -> None:
    found = rules({"type": ["string", "null"], "maxLength": 3})
    assert found["root_value"] == "root_value_string | json_null"
    assert found["root_value_string"] == '"\\"" json_char{0,3} "\\""'
    assert rules({"type": "integer", "nullable": True})["root_value"] == "json_int | json_null"
    assert root({"anyOf": [{"type": "integer"}, {"type": "boolean"}]}) == "json_int | json_boolean"
    merged = root({"allOf": [{"properties": {"a": {"type": "null"}}, "required": ["a"]}, {"properties": {"b": {"type": "null"}}}]})
    assert merged.startswith('"{" ("\\"a\\""')
    found = rules(TREE)
    assert found["root"] == "ref_n" and "ref_n" in found["ref_n_kids"]  # recursion through a rule


@pytest.mark.parametrize(
    ("schema", "feature"),
    [
        ({"type": "array", "items": {"type": "integer"}, "uniqueItems": True}, "uniqueItems"),
        ({"type": "object", "patternProperties": {"a": {}}}, "patternProperties"),
        ({"not": {"type": "null"}}, "not"),
        ({"type": "number", "maximum": 3}, "maximum"),
        ({"type": "integer", "multipleOf": 2}, "multipleOf"),
        ({"type": "string", "pattern": "(?=a)a"}, "pattern construct"),
        ({"type": "string", "pattern": "(a)\\1"}, "pattern construct"),
        ({"$ref": "http://example.com/s.json"}, "outside"),
        ({"$ref": "#/nope"}, "dangling"),
        ({"type": "integer", "minimum": 5, "maximum": 1}, "minimum above maximum"),
        ({"type": "wat"}, "type"),
        ({"enum": []}, "empty enum"),
    ],
)
def test_unsupported_features_are_named(schema: dict[str, Any], feature: str) -> None:
    with pytest.raises(Unsupported, match=feature):
        schema_to_ebnf(schema)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": {}},
        {"type": ["string", {}]},
        {"properties": []},
        {"type": "array", "items": [{"type": "string"}]},
        {"enum": "x"},
        {"type": "string", "minLength": -1},
        {"allOf": [5]},
        {"$ref": 5},
        5,
        {"type": "string", "pattern": 5},
        {"const": float("nan")},
    ],
    ids=repr,
)
def test_malformed_schemas_are_unsupported_not_crashes(schema: Any) -> None:
    """They go to genai's json_schema, whose checks give the request its 400."""
    with pytest.raises(Unsupported):
        schema_to_ebnf(schema)


def test_guided_parts_use_the_grammar_and_fall_back_to_genai_json() -> None:
    def request(**fields: Any) -> ChatCompletionRequest:
        return ChatCompletionRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "x"}], **fields})

    def fmt(schema: dict[str, Any]) -> dict[str, Any]:
        return {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}

    assert guided.grammar(request(response_format={"type": "json_object"}), None) == [["ebnf", ANY_OBJECT]]
    assert guided.grammar(request(response_format=fmt({"type": "boolean"})), None) == [["ebnf", schema_to_ebnf({"type": "boolean"})]]
    unique = {"type": "array", "uniqueItems": True}
    assert guided.grammar(request(response_format=fmt(unique)), None) == [["json", json.dumps(unique)]]
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}}
    parts = guided.grammar(request(tools=[tool], tool_choice="required"), "hermes3")
    assert parts is not None and [kind for kind, _ in parts] == ["const", "ebnf", "const"]
    named = guided.grammar(request(tools=[tool], tool_choice={"type": "function", "function": {"name": "f"}}), "hermes3")
    assert named is not None and [kind for kind, _ in named] == ["const", "ebnf", "const"]


STR = {"type": "string"}
ESCAPES = 'say "hi" \\ then\ttab é 日本'
SCHEMAS: list[dict[str, Any]] = [
    {"type": "object"},
    {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "color": {"type": "string"}},
        "required": ["name"],
    },
    {"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": 3},
    {"type": "array", "prefixItems": [{"type": "boolean"}, {"enum": ["x", 2]}], "items": {"type": "null"}},
    {"type": "string", "pattern": "^[A-Z][a-z]+ [0-9]{2,4}$"},
    {"type": "string", "format": "date-time"},
    {"type": "string", "format": "email"},
    {"type": "string", "format": "uuid"},
    {"type": "integer", "minimum": -40, "maximum": 1200},
    {"type": ["number", "null"], "minimum": 0},
    {"anyOf": [{"type": "boolean"}, {"type": "object", "properties": {"k": {"const": ESCAPES}}, "required": ["k"]}]},
    TREE,
    {"type": "object", "properties": {'we"ird\\key': {"type": "null"}}, "required": ['we"ird\\key'], "additionalProperties": True},
]


def test_every_grammar_compiles_and_holds_the_tiny_model(tiny_model_dir: Path) -> None:
    """One real compile check through genai's LLMPipeline (xgrammar), plus generations held to
    the grammar: the trained JSON answer comes out compact, odd text is escaped correctly."""
    import openvino_genai as ov_genai

    from tests.models import TINY_JSON_ANSWER, TINY_JSON_PROMPT

    pipe = ov_genai.LLMPipeline(str(tiny_model_dir), "CPU")

    def generate(schema: dict[str, Any], max_new_tokens: int, prompt: str = TINY_JSON_PROMPT) -> str:
        config = ov_genai.GenerationConfig(max_new_tokens=max_new_tokens)
        config.structured_output_config = guided.structured_output(ov_genai, [["ebnf", schema_to_ebnf(schema)]])
        return str(pipe.generate(prompt, config))

    for schema in SCHEMAS:
        generate(schema, 2)  # compiles (a refused grammar raises)
    cat = generate(SCHEMAS[1], 60)
    assert json.loads(cat) == json.loads(TINY_JSON_ANSWER) and "\n" not in cat
    assert json.loads(generate({"const": {"k": ESCAPES}}, 60)) == {"k": ESCAPES}
    compound = ov_genai.StructuredOutputConfig
    tagged = guided.structured_output(ov_genai, [["const", "<x>"], ["ebnf", schema_to_ebnf({"enum": [1, 2]})], ["const", "</x>"]])
    assert isinstance(tagged, compound)
    config = ov_genai.GenerationConfig(max_new_tokens=10)
    config.structured_output_config = tagged
    assert str(pipe.generate(TINY_JSON_PROMPT, config)) in ("<x>1</x>", "<x>2</x>")

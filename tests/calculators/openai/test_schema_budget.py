"""The structured-output complexity budget (calculators/openai/schema_budget.py) through
check_schema, as the request path calls it: normal schemas pass, costly ones are a 400 naming
the budget they exceed."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field

from calculators.openai import schema_budget as budget
from calculators.openai.schema_check import check_schema
from graphs.errors import InvalidRequestError

HOSTILE = "((a|b){150}){150}"  # ~36 s of grammar compilation in genai 2026.4 (issue 23)


def _string(**keywords: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"a": {"type": "string", **keywords}}, "required": ["a"]}


class Address(BaseModel):
    street: str
    city: str
    zip_code: str = Field(pattern=r"^\d{5}(-\d{4})?$")


class Person(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    age: int = Field(ge=0, le=150)
    email: str = Field(pattern=r"^[\w.+-]+@[\w-]+\.[\w.]+$")
    tags: list[str] = Field(default_factory=list, max_length=20)
    addresses: list[Address] = Field(min_length=1, max_length=5)
    nickname: str | None = None


PROPS_150 = {f"p{i}": {"type": "integer"} for i in range(150)}

OPENAI_MATH = {  # OpenAI's structured-outputs guide example
    "type": "object",
    "properties": {
        "steps": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"explanation": {"type": "string"}, "output": {"type": "string"}},
                "required": ["explanation", "output"],
                "additionalProperties": False,
            },
        },
        "final_answer": {"type": "string"},
    },
    "required": ["steps", "final_answer"],
    "additionalProperties": False,
}

TOOL_PARAMETERS = {  # a tool with nested parameters
    "type": "object",
    "properties": {
        "location": {"type": "string", "description": "City and country e.g. Bogotá, Colombia"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 14},
        "filters": {
            "type": "object",
            "properties": {
                "hours": {"type": "array", "items": {"type": "integer"}, "maxItems": 24},
                "date": {"type": "string", "format": "date"},
            },
        },
    },
    "required": ["location", "unit"],
}


@pytest.mark.parametrize(
    "schema",
    [
        OPENAI_MATH,
        TOOL_PARAMETERS,
        Person.model_json_schema(),
        _string(pattern=r"^(\([0-9]{3}\))?[0-9]{3}-[0-9]{4}$"),
        _string(pattern="(a|b){100000}"),  # one repeat, however long, is cheap
        _string(pattern="((a|b){44}){44}"),  # nested, within the budget (~0.2 s)
        _string(pattern="((a|b)+c){1000}"),  # `+` counts as small
        _string(maxLength=100_000),
        {"type": "array", "items": {"type": "integer"}, "maxItems": 100_000},
        {"enum": [f"word{i}" for i in range(1000)]},
        {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(200)}},
    ],
    ids=["openai-math", "tool", "pydantic", "phone", "long-repeat", "nested-ok", "plus", "maxLength", "maxItems", "enum", "props-200"],
)
def test_normal_schemas_pass(schema: dict[str, Any]) -> None:
    check_schema(schema, "response_format.json_schema.schema")


@pytest.mark.parametrize(
    ("schema", "budget_named"),
    [
        (_string(pattern=HOSTILE), "repetition-product budget is 2000"),
        (_string(pattern="((a|b){100}){100}"), "repetition-product budget"),
        (_string(pattern="(((a|b){13}){13}){13}"), "repetition-product budget"),
        (_string(pattern="x(y([a-z]{100}){100})?"), "repetition-product budget"),  # inside a group
        ({"type": "object", "patternProperties": {"^((a|b){100}){100}$": {"type": "integer"}}}, "repetition-product budget"),
        # Each pattern within the budget, together over it.
        (
            {"type": "object", "properties": {f"p{i}": {"type": "string", "pattern": "((a|b){30}){30}"} for i in range(3)}},
            "2700 in all",
        ),
        (_string(pattern="a{100001}"), "budget for a count is 100000"),
        (_string(maxLength=10**9), "maxLength is 1000000000; the budget for a count is 100000"),
        ({"type": "array", "items": {"type": "integer"}, "minItems": 200_000}, "minItems is 200000"),
        ({"enum": list(range(1001))}, "an enum has 1001 values; the budget is 1000"),
        ({"enum": ["x" * 64] * 300}, "enum and const values take more than 16384 characters"),
        ({"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(201)}}, "201 properties; the budget is 200"),
        (
            {"type": "object", "properties": {f"o{j}": {"type": "object", "properties": PROPS_150} for j in range(4)}},
            "more than 500 properties",
        ),
        (_string(pattern="a" * 4097), "a pattern is 4097 characters"),
        ({"anyOf": [{"minimum": i} for i in range(2001)]}, "more than 2000 subschemas"),
        ({"type": "string", "description": "x" * 140_000}, "characters of JSON; the budget is 131072"),
    ],
    ids=[
        "hostile", "100x100", "triple", "grouped", "patternProperties", "summed", "count", "maxLength", "minItems",
        "enum-values", "enum-text", "properties", "total-properties", "pattern-length", "subschemas", "size",
    ],
)  # fmt: skip
def test_costly_schemas_are_refused_naming_the_budget(schema: dict[str, Any], budget_named: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        check_schema(schema, "response_format.json_schema.schema")
    error = caught.value
    assert "complexity budget" in str(error) and budget_named in str(error)
    assert error.param == "response_format.json_schema.schema"


def test_pattern_cost() -> None:
    assert budget.pattern_cost(HOSTILE) == (150, 22_500)
    assert budget.pattern_cost("(a|b){100000}") == (100_000, 0)  # no repeat in a repeat
    assert budget.pattern_cost("(ab|cd){10}x{3}") == (10, 0)
    assert budget.pattern_cost("((ab|cd){10}){10}") == (10, 400)  # the repeated body's width counts
    assert budget.pattern_cost("((a){5}){5}|((b){4}){4}") == (5, 41)
    assert budget.pattern_cost("[a-z]+@[a-z]+") == (1, 0)


def test_budget_never_hides_structural_problems() -> None:
    with pytest.raises(InvalidRequestError, match="not a valid regular expression"):
        check_schema(_string(pattern="((a"), "response_format.json_schema.schema")

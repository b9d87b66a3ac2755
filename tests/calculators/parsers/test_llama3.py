"""llama3 JSON tool parser: {"name", "parameters"} calls, `<|python_tag|>`, `;`-separated, every chunking."""

from __future__ import annotations

import json

import pytest

from calculators.parsers import ContentDelta, Llama3JsonToolParser, ParsedOutput, ToolCall, ToolCallArgumentsDelta, ToolCallStart
from tests.calculators.parsers.streaming import assert_chunking_invariant, counting_ids


def call(n: int, name: str, arguments: object) -> ToolCall:
    return ToolCall(id=f"call_{n:024d}", name=name, arguments=json.dumps(arguments, ensure_ascii=False))


WEATHER = '{"name": "get_weather", "parameters": {"city": "Paris"}}'
TIME = '{"name": "get_time", "parameters": {"tz": "UTC"}}'
W, T = call(0, "get_weather", {"city": "Paris"}), call(1, "get_time", {"tz": "UTC"})

CASES = [
    ("Just text.", ParsedOutput("Just text.")),
    (WEATHER, ParsedOutput("", tool_calls=(W,))),
    (f"  \n{WEATHER}\n", ParsedOutput("", tool_calls=(W,))),
    (f"<|python_tag|>{WEATHER}", ParsedOutput("", tool_calls=(W,))),
    (f"{WEATHER}; {TIME}", ParsedOutput("", tool_calls=(W, T))),
    (f"<|python_tag|>{WEATHER};{TIME};", ParsedOutput("", tool_calls=(W, T))),  # a dangling ';' is dropped
    (f"{WEATHER}\n{TIME}", ParsedOutput("", tool_calls=(W, T))),
    ('{"name": "f", "arguments": {"a": 1}}', ParsedOutput("", tool_calls=(call(0, "f", {"a": 1}),))),
    ('{"name": "ping"}', ParsedOutput("", tool_calls=(call(0, "ping", {}),))),
    (f"I will check.\n<|python_tag|>{WEATHER}", ParsedOutput("I will check.", tool_calls=(W,))),
    (f"A\n<|python_tag|>{WEATHER}\nB", ParsedOutput("A\nB", tool_calls=(W,))),
    (f"{WEATHER} and that is all", ParsedOutput("and that is all", tool_calls=(W,))),
    (f"{WEATHER}; not json", ParsedOutput("; not json", tool_calls=(W,))),
    # not calls: content, verbatim
    ('{"answer": 42}', ParsedOutput('{"answer": 42}')),
    (' {"name": "f", "parameters": {"a": oops}}', ParsedOutput(' {"name": "f", "parameters": {"a": oops}}')),
    ('{"name": "f", "parameters": {"a"', ParsedOutput('{"name": "f", "parameters": {"a"')),  # truncated
    (f"{WEATHER}; {{bad}}; {TIME}", ParsedOutput(f"; {{bad}}; {TIME}", tool_calls=(W,))),
    ("<|python_tag|>brave_search.call(query='x')", ParsedOutput("<|python_tag|>brave_search.call(query='x')")),
    ("<|python_tag|>", ParsedOutput("<|python_tag|>")),
    ('Mentions {"name": "f"} mid-text', ParsedOutput('Mentions {"name": "f"} mid-text')),
    ("<|python_ta", ParsedOutput("<|python_ta")),
    ("<|pythonic", ParsedOutput("<|pythonic")),
    ("ends <|python", ParsedOutput("ends <|python")),
    (
        '{"name": "say", "parameters": {"text": "} { \\" ; 世界 🌍"}}',
        ParsedOutput("", tool_calls=(call(0, "say", {"text": '} { " ; 世界 🌍'}),)),
    ),
    ("", ParsedOutput("")),
    ("  ", ParsedOutput("  ")),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_whole_text(text: str, expected: ParsedOutput) -> None:
    assert Llama3JsonToolParser(counting_ids()).parse(text) == expected


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_every_chunking_agrees(text: str, expected: ParsedOutput) -> None:
    assert_chunking_invariant(Llama3JsonToolParser, text, expected)


def test_streaming_emits_each_call_as_its_object_closes() -> None:
    parser = Llama3JsonToolParser(counting_ids())
    assert parser.feed('<|python_tag|>{"name": "f", "parameters": {"s": "}"') == []
    assert parser.feed("}}") == [ToolCallStart(0, "call_" + "0" * 24, "f"), ToolCallArgumentsDelta(0, '{"s": "}"}')]
    assert parser.feed(' ; {"name": "g", "parameters": {}}') == [
        ToolCallStart(1, "call_" + "0" * 23 + "1", "g"),
        ToolCallArgumentsDelta(1, "{}"),
    ]
    assert parser.finish() == []


def test_plain_text_streams_without_delay() -> None:
    parser = Llama3JsonToolParser()
    assert parser.feed("Hello") == [ContentDelta("Hello")]
    assert parser.feed(" world <|py") == [ContentDelta(" world")]
    assert parser.feed("x") == [ContentDelta(" <|pyx")]

"""hermes3 tool parser: <tool_call>{…}</tool_call> blocks, whole text and streamed in every chunking."""

from __future__ import annotations

import json

import pytest

from calculators.parsers import ContentDelta, Hermes3ToolParser, ParsedOutput, ToolCall, ToolCallArgumentsDelta, ToolCallStart
from tests.calculators.parsers.streaming import assert_chunking_invariant, counting_ids


def call(n: int, name: str, arguments: object) -> ToolCall:
    return ToolCall(id=f"call_{n:024d}", name=name, arguments=json.dumps(arguments, ensure_ascii=False))


WEATHER = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>'
TIME = '<tool_call>\n{"name": "get_time", "arguments": {"tz": "UTC"}}\n</tool_call>'
BAD = '<tool_call>\n{"name": "get_weather", "arguments": {"city": Paris}}\n</tool_call>'

CASES = [
    ("Just text.\n", ParsedOutput("Just text.\n")),
    (WEATHER, ParsedOutput("", tool_calls=(call(0, "get_weather", {"city": "Paris", "unit": "celsius"}),))),
    (
        f"Let me check.\n{WEATHER}\n",
        ParsedOutput("Let me check.", tool_calls=(call(0, "get_weather", {"city": "Paris", "unit": "celsius"}),)),
    ),
    (f"{WEATHER}\nDone.", ParsedOutput("Done.", tool_calls=(call(0, "get_weather", {"city": "Paris", "unit": "celsius"}),))),
    (f"A\n{WEATHER}\n\nB", ParsedOutput("A\nB", tool_calls=(call(0, "get_weather", {"city": "Paris", "unit": "celsius"}),))),
    (
        f"{WEATHER}\n{TIME}",
        ParsedOutput("", tool_calls=(call(0, "get_weather", {"city": "Paris", "unit": "celsius"}), call(1, "get_time", {"tz": "UTC"}))),
    ),
    (
        f"{WEATHER}{TIME}\n",
        ParsedOutput("", tool_calls=(call(0, "get_weather", {"city": "Paris", "unit": "celsius"}), call(1, "get_time", {"tz": "UTC"}))),
    ),
    (BAD, ParsedOutput(BAD)),  # malformed JSON: left as content, verbatim
    (f"Try:\n{BAD}\nok", ParsedOutput(f"Try:\n{BAD}\nok")),
    (f"{WEATHER}\n{BAD}", ParsedOutput(BAD, tool_calls=(call(0, "get_weather", {"city": "Paris", "unit": "celsius"}),))),
    (f"{BAD}\n{TIME}", ParsedOutput(BAD, tool_calls=(call(0, "get_time", {"tz": "UTC"}),))),
    ('<tool_call>{"arguments": {}}</tool_call>', ParsedOutput('<tool_call>{"arguments": {}}</tool_call>')),  # no name
    ('<tool_call>{"name": "f", "arguments": [1]}</tool_call>', ParsedOutput('<tool_call>{"name": "f", "arguments": [1]}</tool_call>')),
    ('<tool_call>["f"]</tool_call>', ParsedOutput('<tool_call>["f"]</tool_call>')),
    (
        '<tool_call>{"name": "f", "arguments": {"x": NaN}}</tool_call>',
        ParsedOutput('<tool_call>{"name": "f", "arguments": {"x": NaN}}</tool_call>'),
    ),
    ('<tool_call>{"name": "ping"}</tool_call>', ParsedOutput("", tool_calls=(call(0, "ping", {}),))),  # no arguments: {}
    ('<tool_call>{"name": "f", "parameters": {"a": 1}}</tool_call>', ParsedOutput("", tool_calls=(call(0, "f", {"a": 1}),))),
    ('<tool_call>{"name": "f", "arguments": "{\\"a\\": 1}"}</tool_call>', ParsedOutput("", tool_calls=(call(0, "f", {"a": 1}),))),
    # unclosed block at the end (a stop token cut it): a call if complete, else content
    ('<tool_call>\n{"name": "f", "arguments": {"a": [1, 2]}}\n', ParsedOutput("", tool_calls=(call(0, "f", {"a": [1, 2]}),))),
    ('Hi <tool_call>\n{"name": "f", "argum', ParsedOutput('Hi <tool_call>\n{"name": "f", "argum')),
    ("ends with a partial tag <tool_ca", ParsedOutput("ends with a partial tag <tool_ca")),
    ("<tool_caller> is not a tag", ParsedOutput("<tool_caller> is not a tag")),
    ("stray </tool_call> end tag", ParsedOutput("stray </tool_call> end tag")),
    (
        '<tool_call>{"name": "say", "arguments": {"text": "héllo 世界 🌍 \\"q\\" </tool_call"}}</tool_call>',
        ParsedOutput("", tool_calls=(call(0, "say", {"text": 'héllo 世界 🌍 "q" </tool_call'}),)),
    ),
    (
        '<tool_call>{"name": "nest", "arguments": {"a": {"b": {"c": [true, null, 1.5]}}, "s": "{}"}}</tool_call>',
        ParsedOutput("", tool_calls=(call(0, "nest", {"a": {"b": {"c": [True, None, 1.5]}}, "s": "{}"}),)),
    ),
    ("", ParsedOutput("")),
    ("\n\n", ParsedOutput("\n\n")),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_whole_text(text: str, expected: ParsedOutput) -> None:
    assert Hermes3ToolParser(counting_ids()).parse(text) == expected


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_every_chunking_agrees(text: str, expected: ParsedOutput) -> None:
    assert_chunking_invariant(Hermes3ToolParser, text, expected)


def test_arguments_keep_unicode_and_are_valid_json() -> None:
    (tool_call,) = Hermes3ToolParser().parse('<tool_call>{"name": "f", "arguments": {"city": "Zürich"}}</tool_call>').tool_calls
    assert tool_call.arguments == '{"city": "Zürich"}'
    assert tool_call.id.startswith("call_") and len(tool_call.id) == 29


def test_streaming_holds_partial_tags_and_emits_each_call_when_complete() -> None:
    parser = Hermes3ToolParser(counting_ids())
    assert parser.feed("Checking <tool") == [ContentDelta("Checking")]  # " <tool" could open a call
    assert parser.feed('_call>\n{"name": "f", ') == []
    assert parser.feed('"arguments": {"x": 1}}\n</tool_') == []
    assert parser.feed("call>\n") == [ToolCallStart(0, "call_" + "0" * 24, "f"), ToolCallArgumentsDelta(0, '{"x": 1}')]
    assert parser.feed("<tool_call>{") == []
    assert parser.feed('"name": "g"}</tool_call>') == [ToolCallStart(1, "call_" + "0" * 23 + "1", "g"), ToolCallArgumentsDelta(1, "{}")]
    assert parser.finish() == []


def test_text_that_is_not_a_tag_is_released() -> None:
    parser = Hermes3ToolParser()
    assert parser.feed("a <tool") == [ContentDelta("a")]
    assert parser.feed("box> b ") == [ContentDelta(" <toolbox> b")]
    assert parser.finish() == [ContentDelta(" ")]


def test_feed_after_finish_is_an_error() -> None:
    parser = Hermes3ToolParser()
    parser.finish()
    with pytest.raises(RuntimeError):
        parser.feed("x")

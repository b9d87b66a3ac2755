"""OutputParser (reasoning, then tool calls in the content) and the parser registry."""

from __future__ import annotations

import json

import pytest

from calculators.parsers import (
    ContentDelta,
    Hermes3ToolParser,
    IdFactory,
    Llama3JsonToolParser,
    OutputParser,
    ParsedOutput,
    Qwen3ReasoningParser,
    ReasoningDelta,
    ToolCall,
    ToolCallArgumentsDelta,
    ToolCallStart,
    coalesce,
    get_reasoning_parser,
    get_tool_parser,
    new_tool_call_id,
)
from tests.calculators.parsers.streaming import assert_chunking_invariant, counting_ids


def call(n: int, name: str, arguments: object) -> ToolCall:
    return ToolCall(id=f"call_{n:024d}", name=name, arguments=json.dumps(arguments, ensure_ascii=False))


HERMES = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
HERMES2 = '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>'

CASES = [
    # (tool_parser, reasoning_parser, starts_in_reasoning, text, expected)
    (None, None, False, "<think>x</think>" + HERMES, ParsedOutput("<think>x</think>" + HERMES)),
    (
        "hermes3",
        None,
        False,
        "<think>x</think>" + HERMES,
        ParsedOutput("<think>x</think>", tool_calls=(call(0, "get_weather", {"city": "Paris"}),)),
    ),
    (None, "qwen3", False, "<think>\nx\n</think>\n\n" + HERMES, ParsedOutput(HERMES, reasoning_content="x")),
    (
        "hermes3",
        "qwen3",
        False,
        f"<think>\nI should call get_weather.\n</think>\n\nLet me look.\n{HERMES}\n{HERMES2}",
        ParsedOutput(
            "Let me look.",
            reasoning_content="I should call get_weather.",
            tool_calls=(call(0, "get_weather", {"city": "Paris"}), call(1, "get_time", {})),
        ),
    ),
    # a tool call inside the reasoning is not a tool call
    (
        "hermes3",
        "qwen3",
        False,
        f"<think>\nmaybe {HERMES}\n</think>\n\nNo tool needed.",
        ParsedOutput("No tool needed.", reasoning_content=f"maybe {HERMES}"),
    ),
    (
        "hermes3",
        "qwen3",
        True,
        f"maybe {HERMES}\n</think>\n\n{HERMES2}",
        ParsedOutput("", reasoning_content=f"maybe {HERMES}", tool_calls=(call(0, "get_time", {}),)),
    ),
    ("hermes3", "qwen3", True, f"still thinking {HERMES}", ParsedOutput("", reasoning_content=f"still thinking {HERMES}")),
    (
        "hermes3",
        "qwen3",
        False,
        "<think>\n\n</think>\n\n" + HERMES,
        ParsedOutput("", tool_calls=(call(0, "get_weather", {"city": "Paris"}),)),
    ),
    ("hermes3", "qwen3", False, "No reasoning, just text.", ParsedOutput("No reasoning, just text.")),
    (
        "llama3",
        "qwen3",
        False,
        '<think>\nplan\n</think>\n\n<|python_tag|>{"name": "f", "parameters": {"q": "ü"}}',
        ParsedOutput("", reasoning_content="plan", tool_calls=(call(0, "f", {"q": "ü"}),)),
    ),
    ("llama3", None, False, '{"name": "f", "parameters": {}}', ParsedOutput("", tool_calls=(call(0, "f", {}),))),
]


@pytest.mark.parametrize(("tools", "reasoning", "starts", "text", "expected"), CASES)
def test_whole_text(tools: str | None, reasoning: str | None, starts: bool, text: str, expected: ParsedOutput) -> None:
    assert OutputParser(tools, reasoning, starts, id_factory=counting_ids()).parse(text) == expected


@pytest.mark.parametrize(("tools", "reasoning", "starts", "text", "expected"), CASES)
def test_every_chunking_agrees(tools: str | None, reasoning: str | None, starts: bool, text: str, expected: ParsedOutput) -> None:
    def make(ids: IdFactory) -> OutputParser:
        return OutputParser(tools, reasoning, starts, id_factory=ids)

    assert_chunking_invariant(make, text, expected)


def test_stream_order_reasoning_then_content_then_calls() -> None:
    parser = OutputParser("hermes3", "qwen3", id_factory=counting_ids())
    events = [*parser.feed(f"<think>\nhmm\n</think>\n\nOK.\n{HERMES}"), *parser.finish()]
    assert events == [
        ReasoningDelta("hmm"),
        ContentDelta("OK."),
        ToolCallStart(0, "call_" + "0" * 24, "get_weather"),
        ToolCallArgumentsDelta(0, '{"city": "Paris"}'),
    ]


def test_parse_does_not_disturb_a_stream_in_progress() -> None:
    parser = OutputParser("hermes3", "qwen3")
    assert parser.feed("<think>\na") == [ReasoningDelta("a")]
    assert parser.parse("plain").content == "plain"
    assert parser.feed("</think>b") == [ContentDelta("b")]


def test_without_parsers_text_passes_through() -> None:
    parser = OutputParser()
    assert not parser.active
    assert parser.feed("<tool_call>") == [ContentDelta("<tool_call>")]
    assert parser.finish() == []
    assert OutputParser("llama3").active and OutputParser(reasoning_parser="qwen3").active


def test_registry_names() -> None:
    assert get_tool_parser("hermes3") is Hermes3ToolParser
    assert get_tool_parser("llama3") is Llama3JsonToolParser
    assert get_reasoning_parser("qwen3") is Qwen3ReasoningParser


@pytest.mark.parametrize("name", ["phi4", "mistral", "nonsense"])
def test_unknown_tool_parser_lists_the_known_names(name: str) -> None:
    with pytest.raises(ValueError, match=rf"tool_parser '{name}' .*supported: hermes3, llama3.*phi4, mistral"):
        get_tool_parser(name)
    with pytest.raises(ValueError, match="tool_parser"):
        OutputParser(tool_parser=name)


def test_unsupported_is_told_apart_from_unknown() -> None:
    with pytest.raises(ValueError, match="'phi4' is not supported"):
        get_tool_parser("phi4")
    with pytest.raises(ValueError, match="'qwen' is unknown; supported: qwen3"):
        get_reasoning_parser("qwen")
    with pytest.raises(ValueError, match="reasoning_parser"):
        OutputParser(reasoning_parser="deepseek_r1")


def test_tool_call_ids_are_openai_style_and_unique() -> None:
    ids = {new_tool_call_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(i.startswith("call_") and len(i) == 29 and i[5:].isalnum() for i in ids)


def test_coalesce_merges_neighbouring_text() -> None:
    merged = coalesce(
        [
            ContentDelta("a"),
            ContentDelta("b"),
            ReasoningDelta("c"),
            ReasoningDelta(""),
            ToolCallArgumentsDelta(0, "{"),
            ToolCallArgumentsDelta(0, "}"),
        ]
    )
    assert merged == [ContentDelta("ab"), ReasoningDelta("c"), ToolCallArgumentsDelta(0, "{}")]

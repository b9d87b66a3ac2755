"""The chat-delta view of the output parsers, as the response calculator uses it."""

from __future__ import annotations

import json

from calculators.openai.parsed_text import ParsedText
from calculators.parsers import OutputParser

TWO_CALLS = (
    '<tool_call>\n{"name": "a", "arguments": {"x": 1}}\n</tool_call>\n<tool_call>\n{"name": "b", "arguments": {"y": 2}}\n</tool_call>'
)


def deltas_of(shaper: ParsedText, text: str, step: int = 3) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for i in range(0, len(text), step):
        out += shaper.feed(text[i : i + step])
    return out + shaper.finish()


def test_tool_calls_become_indexed_fragments() -> None:
    deltas = deltas_of(ParsedText(OutputParser("hermes3")), TWO_CALLS)
    calls = [c for d in deltas for c in d.get("tool_calls", [])]
    names = {c["index"]: c["function"].get("name") for c in calls if c.get("id")}
    assert names == {0: "a", 1: "b"}
    args = {i: "".join(c["function"].get("arguments", "") for c in calls if c["index"] == i) for i in (0, 1)}
    assert json.loads(args[0]) == {"x": 1} and json.loads(args[1]) == {"y": 2}
    assert not any("content" in d for d in deltas)


def test_single_call_keeps_the_first() -> None:
    deltas = deltas_of(ParsedText(OutputParser("hermes3"), single_call=True), TWO_CALLS)
    assert {c["index"] for d in deltas for c in d.get("tool_calls", [])} == {0}


def test_reasoning_and_content_deltas() -> None:
    deltas = deltas_of(ParsedText(OutputParser(None, "qwen3")), "<think>\nhm\n</think>\n\nYes.", step=2)
    reasoning = "".join(d.get("reasoning_content", "") for d in deltas)
    content = "".join(d.get("content", "") for d in deltas)
    assert (reasoning, content) == ("hm", "Yes.")

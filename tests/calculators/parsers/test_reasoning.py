"""qwen3 reasoning parser: <think>…</think> split, whole text and streamed in every chunking."""

from __future__ import annotations

import pytest

from calculators.parsers import ContentDelta, ParsedOutput, Qwen3ReasoningParser, ReasoningDelta, prompt_opens_reasoning
from tests.calculators.parsers.streaming import assert_chunking_invariant

CASES = [
    # (starts_in_reasoning, generated text, reasoning_content, content)
    (False, "<think>\nLet me think.\n</think>\n\nThe answer is 42.", "Let me think.", "The answer is 42."),
    (False, "<think>Short</think>Answer", "Short", "Answer"),
    (False, "\n<think>\nA\n\nB\n</think>\n\nC\n\nD\n", "A\n\nB", "C\n\nD\n"),
    (False, "<think>\n\n</think>\n\nHi", None, "Hi"),  # empty think block (thinking disabled style)
    (False, "<think></think>", None, ""),
    (False, "Plain answer, no thinking.", None, "Plain answer, no thinking."),
    (False, "\n\nPlain after newlines", None, "\n\nPlain after newlines"),
    (False, "Talk about <think> tags </think> later", None, "Talk about <think> tags </think> later"),
    (False, "<thinking is not the tag", None, "<thinking is not the tag"),
    (False, "<thin", None, "<thin"),  # a partial tag at the very end is released as it was
    (False, "<think>\nstill thinking when cut\n", "still thinking when cut", ""),
    (False, "<think>a </thin", "a </thin", ""),
    (False, "<think>x</think>y</think><think>z", "x", "y</think><think>z"),
    (False, "<think>\n1 < 2 and </b> is html\n</think>\nok", "1 < 2 and </b> is html", "ok"),
    (False, "<think>\nüñî 思考 🤔\n</think>\n\n答案 ✅", "üñî 思考 🤔", "答案 ✅"),
    (True, "Let me think.\n</think>\n\nThe answer.", "Let me think.", "The answer."),
    (True, "\nLet me think.\n</think>\n\nThe answer.", "Let me think.", "The answer."),
    (True, "<think>\nredundant opening tag\n</think>\n\nok", "redundant opening tag", "ok"),
    (True, "cut short, no end tag", "cut short, no end tag", ""),
    (True, "\n</think>\n\nonly content", None, "only content"),
    (True, "", None, ""),
    (True, "  <thi", "  <thi", ""),
    (True, "a\n\n</thi", "a\n\n</thi", ""),
    (
        True,
        'think <tool_call>{"name": "f", "arguments": {}}</tool_call>\n</think>\n',
        'think <tool_call>{"name": "f", "arguments": {}}</tool_call>',
        "",
    ),
]


@pytest.mark.parametrize(("starts", "text", "reasoning", "content"), CASES)
def test_whole_text(starts: bool, text: str, reasoning: str | None, content: str) -> None:
    assert Qwen3ReasoningParser(starts).parse(text) == ParsedOutput(content=content, reasoning_content=reasoning)


@pytest.mark.parametrize(("starts", "text", "reasoning", "content"), CASES)
def test_every_chunking_agrees(starts: bool, text: str, reasoning: str | None, content: str) -> None:
    assert_chunking_invariant(lambda _ids: Qwen3ReasoningParser(starts), text, ParsedOutput(content=content, reasoning_content=reasoning))


def test_partial_tags_are_held_back() -> None:
    parser = Qwen3ReasoningParser()
    assert parser.feed("<thi") == []
    assert parser.feed("nk>\n") == []
    assert parser.feed("step one") == [ReasoningDelta("step one")]
    assert parser.feed("\n</th") == []  # could be the end tag: held, newline too
    assert parser.feed("ink>\n\nDone") == [ContentDelta("Done")]
    assert parser.feed(" <think>") == [ContentDelta(" <think>")]  # no tags after the reasoning
    assert parser.finish() == []


def test_held_text_is_released_when_it_is_not_a_tag() -> None:
    parser = Qwen3ReasoningParser(starts_in_reasoning=True)
    assert parser.feed("a\n") == [ReasoningDelta("a")]
    assert parser.feed("</b>") == [ReasoningDelta("\n</b>")]
    assert parser.finish() == []


def test_content_streams_without_delay_when_there_is_no_think() -> None:
    parser = Qwen3ReasoningParser()
    assert parser.feed("Hel") == [ContentDelta("Hel")]
    assert parser.feed("lo") == [ContentDelta("lo")]


def test_feed_after_finish_is_an_error() -> None:
    parser = Qwen3ReasoningParser()
    parser.finish()
    assert parser.finish() == []
    with pytest.raises(RuntimeError):
        parser.feed("x")


@pytest.mark.parametrize(
    ("prompt", "opens"),
    [
        ("<|im_start|>assistant\n<think>\n", True),
        ("<|im_start|>assistant\n<think>", True),
        ("<|im_start|>assistant\n<think>\n\n</think>\n\n", False),
        ("<|im_start|>assistant\n", False),
        ("<|im_start|>user\nwhat is <think>?<|im_end|>\n<|im_start|>assistant\n", False),
    ],
)
def test_prompt_opens_reasoning(prompt: str, opens: bool) -> None:
    assert prompt_opens_reasoning(prompt) is opens

"""Random texts built from tag and JSON fragments: every parser agrees with itself however the text is chunked."""

from __future__ import annotations

import random

import pytest

from calculators.parsers import OutputParser, collect
from tests.calculators.parsers.streaming import check_shape, counting_ids, stream

FRAGMENTS = [
    "<think>",
    "</think>",
    "<tool_call>",
    "</tool_call>",
    "<|python_tag|>",
    "<tool_",
    "</thi",
    "<|py",
    "\n",
    "\n\n",
    " ",
    ";",
    "{",
    "}",
    '"',
    "\\",
    '{"name": "f", "arguments": {"a": 1}}',
    '{"name": "g", "parameters": {"s": "}{;"}}',
    '{"name": "h"}',
    '{"answer": "x"}',
    "text",
    "ü世🌍",
    "<",
]
CONFIGS = [
    ("hermes3", "qwen3", False),
    ("hermes3", "qwen3", True),
    ("llama3", "qwen3", False),
    ("hermes3", None, False),
    ("llama3", None, False),
]


@pytest.mark.parametrize(("tools", "reasoning", "starts"), CONFIGS)
def test_random_texts_in_random_chunkings(tools: str, reasoning: str | None, starts: bool) -> None:
    rng = random.Random(1234)
    for _ in range(300):
        text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 12)))
        expected = OutputParser(tools, reasoning, starts, id_factory=counting_ids()).parse(text)
        chunkings = [list(text)]
        for _ in range(3):
            cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(0, 6)))) if len(text) > 1 else []
            chunkings.append([text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)])
        for chunks in chunkings:
            events = stream(OutputParser(tools, reasoning, starts, id_factory=counting_ids()), chunks)
            check_shape(events)
            assert collect(events) == expected, (text, chunks)

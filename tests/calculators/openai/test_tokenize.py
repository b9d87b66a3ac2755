"""`/v3/tokenize` and `/v3/detokenize` (calculators/openai/tokenize.py) on a fake tokenizer: the chat
template and the prompt policy apply as for generation; the end-to-end tests are in tests/e2e."""

from __future__ import annotations

from typing import Any

import pytest

from calculators.llm.prompt_policy import PromptPolicy
from calculators.llm.vocab import TokenBytes
from calculators.openai.tokenize import detokenize, tokenize
from graphs.errors import InvalidRequestError

VOCAB = TokenBytes((b"<s>", b"a", b"b"), frozenset({0}), longest=3)


class FakeTokenizer:
    token_bytes = VOCAB

    def __init__(self) -> None:
        self.rendered: list[tuple[list[dict[str, Any]], dict[str, Any]]] = []

    def render_chat(self, messages: list[dict[str, Any]], **kw: Any) -> str:
        self.rendered.append((messages, kw))
        return "<s>" + "".join(m["content"] for m in messages)

    def encode(self, text: str, add_special_tokens: bool) -> list[int]:
        ids = [1 if c == "a" else 2 for c in text.removeprefix("<s>")]
        return [0, *ids] if add_special_tokens or text.startswith("<s>") else ids

    def decode(self, ids: list[int], skip_special_tokens: bool) -> str:
        return b"".join(VOCAB.table[i] for i in ids if not (skip_special_tokens and i in VOCAB.special_ids)).decode()


POLICY = PromptPolicy(context_length=8, prompt_limit=None, speculation=None, vocab=VOCAB)


def test_a_prompt_and_a_chat_are_counted_as_generation_would() -> None:
    tokenizer: Any = FakeTokenizer()
    assert tokenize({"model": "m", "prompt": "ab"}, tokenizer, POLICY) == {"count": 3, "max_model_len": 8, "tokens": [0, 1, 2]}
    assert tokenize({"model": "m", "prompt": "ab", "add_special_tokens": False}, tokenizer, POLICY)["tokens"] == [1, 2]
    body = {"model": "m", "messages": [{"role": "user", "content": "ba"}], "chat_template_kwargs": {"enable_thinking": False}}
    assert tokenize(body, tokenizer, POLICY)["tokens"] == [0, 2, 1]
    assert tokenizer.rendered == [
        ([{"role": "user", "content": "ba"}], {"add_generation_prompt": True, "tools": None, "enable_thinking": False})
    ]


def test_prompts_chat_would_refuse_are_refused() -> None:
    tokenizer: Any = FakeTokenizer()
    with pytest.raises(InvalidRequestError, match="the prompt has 8 tokens; this model's context length is 8") as info:
        tokenize({"model": "m", "prompt": "abababa"}, tokenizer, POLICY)
    assert info.value.param == "prompt"
    with pytest.raises(InvalidRequestError, match="at least 8 tokens") as info:  # refused before encoding
        tokenize({"model": "m", "messages": [{"role": "user", "content": "a" * 48}]}, tokenizer, POLICY)
    assert info.value.param == "messages"
    with pytest.raises(InvalidRequestError):
        tokenize({"model": "m"}, tokenizer, POLICY)


def test_detokenize_shows_special_tokens_within_the_vocabulary_and_context() -> None:
    tokenizer: Any = FakeTokenizer()
    assert detokenize({"model": "m", "tokens": [0, 2, 1]}, tokenizer, POLICY) == {"prompt": "<s>ba"}
    with pytest.raises(InvalidRequestError, match="out of the vocabulary"):
        detokenize({"model": "m", "tokens": [3]}, tokenizer, POLICY)
    with pytest.raises(InvalidRequestError, match="9 token ids; this model's context length is 8 tokens"):
        detokenize({"model": "m", "tokens": [1] * 9}, tokenizer, POLICY)

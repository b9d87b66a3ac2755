"""The servable's prompt policy (calculators/llm/prompt_policy.py): the prompt limit from the node's
options and the context, and the 400s for prompts beyond it, before and after encoding."""

from __future__ import annotations

import pytest

from calculators.llm.options import LLMOptions, Speculation
from calculators.llm.prompt_policy import PromptPolicy, prompt_limit
from calculators.llm.vocab import TokenBytes
from graphs.errors import InvalidRequestError


def options(**kw: object) -> LLMOptions:
    return LLMOptions.model_validate({"models_path": "./", **kw})


def test_the_prompt_limit_is_max_prompt_tokens_below_the_context() -> None:
    assert prompt_limit(options(), 2048) is None  # unset: only the context bounds a prompt
    assert prompt_limit(options(max_prompt_tokens=100), 2048) == 100
    assert prompt_limit(options(max_prompt_tokens=2048), 2048) is None  # a prompt leaves room for a new token anyway
    assert prompt_limit(options(max_prompt_tokens=100), None) == 100  # context unknown
    # NPU's compiled prompt size (genai's 1024 unless plugin_config says) bounds it too; the lower one wins
    assert prompt_limit(options(device="NPU"), 4096) == 1024
    assert prompt_limit(options(device="NPU", max_prompt_tokens=300), 4096) == 300
    assert prompt_limit(options(device="NPU", plugin_config='{"MAX_PROMPT_LEN": 256}', max_prompt_tokens=300), 4096) == 256
    assert prompt_limit(options(device="NPU"), 1024) is None


def test_the_policy_is_worked_out_once_from_the_options() -> None:
    vocab = TokenBytes((b"a", b"bb"), frozenset(), longest=2)
    policy = PromptPolicy.of(options(max_prompt_tokens=10, plugin_config='{"prompt_lookup": true}'), 64, vocab)
    assert policy == PromptPolicy(64, 10, Speculation("prompt_lookup"), vocab)
    assert PromptPolicy.of(options(), None, None) == PromptPolicy(None, None, None, None)


def test_prompts_beyond_the_limit_or_context_are_refused() -> None:
    policy = PromptPolicy(64, 10, None, TokenBytes((b"a", b"bb"), frozenset(), longest=2))
    policy.check_prompt_tokens(10, "prompt")
    with pytest.raises(InvalidRequestError, match=r"the prompt has 11 tokens; this server takes at most 10 \(max_prompt_tokens\)") as info:
        policy.check_prompt_tokens(11, "messages")
    assert (info.value.param, info.value.code) == ("messages", "context_length_exceeded")
    unlimited = PromptPolicy(64, None, None, None)
    unlimited.check_prompt_tokens(63, "prompt")
    with pytest.raises(InvalidRequestError, match="the prompt has 64 tokens; this model's context length is 64 tokens"):
        unlimited.check_prompt_tokens(64, "prompt")
    # Before encoding: a text of n characters has at least n / (2 * longest) tokens.
    policy.refuse_surely_too_long("x" * 43, "prompt")  # at least 10
    with pytest.raises(InvalidRequestError, match="the prompt has at least 11 tokens"):
        policy.refuse_surely_too_long("x" * 44, "prompt")
    unlimited.refuse_surely_too_long("x" * 10_000, "prompt")  # no vocabulary: no cheap refusal
    PromptPolicy(None, None, None, policy.vocab).refuse_surely_too_long("x" * 10_000, "prompt")  # nothing bounds it

"""OpenAI request fields -> token budget and GenerationConfig fields."""

from __future__ import annotations

from typing import Any

import pytest

from calculators.llm.generation_config import engine_config, max_new_tokens
from calculators.openai.protocol import ChatCompletionRequest, CompletionRequest
from graphs.errors import InvalidRequestError

NO_TOP_K = 2**31 - 1


def chat(**fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields})


def completion(**fields: Any) -> CompletionRequest:
    return CompletionRequest.model_validate({"model": "m", "prompt": "hi", **fields})


# --- max_new_tokens ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt_tokens", "context", "limit", "expected"),
    [
        (10, 100, 4096, 90),  # room left in the context
        (10, 100, 50, 50),  # capped by the servable's max_tokens_limit
        (99, 100, 4096, 1),
        (10, None, 77, 77),  # unknown context length: the limit alone
    ],
)
def test_default_is_the_room_left_capped_by_the_limit(prompt_tokens: int, context: int | None, limit: int, expected: int) -> None:
    for params in (chat(), completion()):
        assert max_new_tokens(params, prompt_tokens, context, limit) == expected


@pytest.mark.parametrize(
    "params",
    [chat(max_tokens=30), chat(max_completion_tokens=30), chat(max_tokens=5, max_completion_tokens=30), completion(max_tokens=30)],
    ids=["chat-max_tokens", "chat-max_completion_tokens", "max_completion_tokens-wins", "completion"],
)
def test_requested_limit_is_used_when_it_fits(params: ChatCompletionRequest | CompletionRequest) -> None:
    assert max_new_tokens(params, 10, 100, 4096) == 30
    assert max_new_tokens(params, 70, 100, 30) == 30  # exactly at both bounds
    assert max_new_tokens(params, 10, None, 4096) == 30


@pytest.mark.parametrize(("params", "param"), [(chat(), "messages"), (completion(), "prompt")], ids=["chat", "completion"])
@pytest.mark.parametrize("prompt_tokens", [100, 150])
def test_prompt_too_long(params: ChatCompletionRequest | CompletionRequest, param: str, prompt_tokens: int) -> None:
    with pytest.raises(InvalidRequestError) as info:
        max_new_tokens(params, prompt_tokens, 100, 4096)
    error = info.value
    assert error.kind == "invalid_request_error"
    assert (error.param, error.code) == (param, "context_length_exceeded")
    assert str(prompt_tokens) in error.message and "100" in error.message


@pytest.mark.parametrize(
    ("params", "param"),
    [
        (chat(max_tokens=500), "max_tokens"),
        (chat(max_completion_tokens=500), "max_completion_tokens"),
        (completion(max_tokens=500), "max_tokens"),
    ],
)
def test_max_tokens_above_the_servable_limit(params: ChatCompletionRequest | CompletionRequest, param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        max_new_tokens(params, 10, None, 256)
    assert info.value.param == param
    assert "500" in info.value.message and "256" in info.value.message


@pytest.mark.parametrize(
    ("params", "param"),
    [
        (chat(max_tokens=95), "max_tokens"),
        (chat(max_completion_tokens=95), "max_completion_tokens"),
        (completion(max_tokens=91), "max_tokens"),
    ],
)
def test_max_tokens_beyond_the_context(params: ChatCompletionRequest | CompletionRequest, param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        max_new_tokens(params, 10, 100, 4096)
    assert (info.value.param, info.value.code) == (param, "context_length_exceeded")
    assert "100" in info.value.message


# --- engine_config -------------------------------------------------------------------------------


def test_unset_fields_keep_the_model_defaults() -> None:
    assert engine_config(chat(), 17) == {"max_new_tokens": 17}
    assert engine_config(completion(), 5) == {"max_new_tokens": 5}


def test_temperature_zero_is_greedy() -> None:
    config = engine_config(chat(temperature=0), 10)
    assert config["do_sample"] is False
    assert "temperature" not in config


@pytest.mark.parametrize("temperature", [0.01, 0.7, 2.0])
def test_positive_temperature_samples(temperature: float) -> None:
    config = engine_config(completion(temperature=temperature), 10)
    assert config["do_sample"] is True
    assert config["temperature"] == temperature


@pytest.mark.parametrize(("top_k", "expected"), [(-1, NO_TOP_K), (0, NO_TOP_K), (1, 1), (40, 40)])
def test_top_k(top_k: int, expected: int) -> None:
    assert engine_config(chat(top_k=top_k), 10)["top_k"] == expected


@pytest.mark.parametrize(("seed", "expected"), [(0, 0), (42, 42), (-1, 2**63 - 1), (2**63 - 1, 2**63 - 1), (2**63, 0), (-(2**63), 0)])
def test_seed_becomes_a_non_negative_int64_rng_seed(seed: int, expected: int) -> None:
    assert engine_config(chat(seed=seed), 10)["rng_seed"] == expected


def test_n_asks_for_several_sequences() -> None:
    assert engine_config(chat(n=3, temperature=1.0), 10)["num_return_sequences"] == 3
    assert "num_return_sequences" not in engine_config(chat(n=1), 10)


def test_sampling_knobs_and_penalties_map_one_to_one() -> None:
    params = completion(top_p=0.9, min_p=0.05, repetition_penalty=1.1, presence_penalty=-0.5, frequency_penalty=1.5, ignore_eos=True)
    assert engine_config(params, 64) == {
        "max_new_tokens": 64,
        "top_p": 0.9,
        "min_p": 0.05,
        "repetition_penalty": 1.1,
        "presence_penalty": -0.5,
        "frequency_penalty": 1.5,
        "ignore_eos": True,
    }


def test_stop_strings_are_left_to_the_detokenizer() -> None:
    config = engine_config(chat(stop=["\n", "END"], include_stop_str_in_output=True), 10)
    assert config == {"max_new_tokens": 10}


def test_every_value_builds_a_genai_generation_config() -> None:
    """The field names and value ranges are ones openvino-genai accepts."""
    ov_genai = pytest.importorskip("openvino_genai")
    params = chat(
        temperature=0.8, top_p=0.9, top_k=-1, min_p=0.1, seed=-1, n=2, presence_penalty=0.5,
        frequency_penalty=0.5, repetition_penalty=1.2, ignore_eos=True,
    )  # fmt: skip
    config = ov_genai.GenerationConfig()
    config.update_generation_config(**engine_config(params, 32))
    config.validate()
    assert (config.max_new_tokens, config.num_return_sequences, config.do_sample) == (32, 2, True)
    assert config.rng_seed == 2**63 - 1


@pytest.mark.parametrize("seed", [-(2**63), -1, 2**63 - 1, 2**63, 2**64 - 1, 2**70])
def test_any_json_seed_is_accepted_by_genai(seed: int) -> None:
    ov_genai = pytest.importorskip("openvino_genai")
    config = ov_genai.GenerationConfig()
    config.update_generation_config(**engine_config(chat(seed=seed, temperature=1.0), 8))
    config.validate()

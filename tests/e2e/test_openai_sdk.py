"""The official `openai` SDK against a real server on the tiny trained model."""

from __future__ import annotations

import openai
import pytest

from tests.models import TINY_COMPLETIONS, TINY_PROMPTS

TEST_PROMPT = "Say this is a test"


def chat(client: openai.OpenAI, prompt: str, **kwargs: object) -> openai.types.chat.ChatCompletion:
    return client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": prompt}], **kwargs)  # type: ignore[call-overload, no-any-return]


@pytest.mark.parametrize("prompt", sorted(TINY_PROMPTS))
def test_chat_unary_answers_exactly(client: openai.OpenAI, prompt: str) -> None:
    completion = chat(client, prompt)
    choice = completion.choices[0]
    assert choice.message.content == TINY_PROMPTS[prompt]
    assert choice.message.role == "assistant"
    assert choice.finish_reason == "stop"
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "tiny"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 5
    assert completion.usage.completion_tokens >= 3
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_chat_stream_reassembles_answer(client: openai.OpenAI) -> None:
    prompt = "Say hello in French."  # non-ASCII: café and an emoji split over byte tokens
    chunks = list(chat(client, prompt, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == TINY_PROMPTS[prompt]
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == []
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens > 5
    assert all(c.id == chunks[0].id and c.object == "chat.completion.chunk" for c in chunks)
    # a long answer arrives in many chunks, not one
    story = list(chat(client, "Tell me a story.", stream=True))
    assert len([c for c in story if c.choices and c.choices[0].delta.content]) > 10


def test_chat_stream_without_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(chat(client, TEST_PROMPT, stream=True))
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


def test_max_tokens_gives_length(client: openai.OpenAI) -> None:
    completion = chat(client, "Tell me a story.", max_tokens=5)
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 5
    assert TINY_PROMPTS["Tell me a story."].startswith(completion.choices[0].message.content or "")
    completion = chat(client, "Tell me a story.", max_completion_tokens=4)
    assert completion.usage is not None and completion.usage.completion_tokens == 4


def test_extra_body_sampling_knobs(client: openai.OpenAI) -> None:
    completion = chat(client, TEST_PROMPT, temperature=0.7, extra_body={"top_k": 1, "repetition_penalty": 1.0, "min_p": 0.0})
    assert completion.choices[0].message.content == TINY_PROMPTS[TEST_PROMPT]  # top_k 1 is greedy


def test_seed_makes_sampling_repeatable(client: openai.OpenAI) -> None:
    first = chat(client, "Tell me a story.", temperature=1.5, seed=7, max_tokens=20)
    second = chat(client, "Tell me a story.", temperature=1.5, seed=7, max_tokens=20)
    assert first.choices[0].message.content == second.choices[0].message.content


def test_stop_string_cuts_output(client: openai.OpenAI) -> None:
    completion = chat(client, "Count to five.", stop=[", four", "xyz"])
    assert completion.choices[0].message.content == "One, two, three"
    assert completion.choices[0].finish_reason == "stop"
    full = chat(client, "Count to five.")
    assert completion.usage is not None and full.usage is not None
    assert completion.usage.completion_tokens < full.usage.completion_tokens  # counted up to the stop
    streamed = "".join(c.choices[0].delta.content or "" for c in chat(client, "Count to five.", stop=" three", stream=True) if c.choices)
    assert streamed == "One, two,"
    kept = chat(client, "Count to five.", stop=", four", extra_body={"include_stop_str_in_output": True})
    assert kept.choices[0].message.content == "One, two, three, four"


def test_n_choices(client: openai.OpenAI) -> None:
    completion = chat(client, TEST_PROMPT, n=2, temperature=0.3, extra_body={"top_k": 1})
    assert [c.index for c in completion.choices] == [0, 1]
    assert all(c.message.content == TINY_PROMPTS[TEST_PROMPT] for c in completion.choices)
    chunks = list(chat(client, TEST_PROMPT, n=2, temperature=0.3, stream=True, extra_body={"top_k": 1}))
    for index in (0, 1):
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices and c.choices[0].index == index)
        assert text == TINY_PROMPTS[TEST_PROMPT]


@pytest.mark.parametrize("prompt", sorted(TINY_COMPLETIONS))
def test_completions_unary(client: openai.OpenAI, prompt: str) -> None:
    completion = client.completions.create(model="tiny", prompt=prompt, max_tokens=30, stop=["\n"])
    assert completion.choices[0].text.startswith(TINY_COMPLETIONS[prompt])
    assert completion.id.startswith("cmpl-")
    assert completion.object == "text_completion"
    assert completion.usage is not None and 3 <= completion.usage.completion_tokens <= 30


def test_completions_stream(client: openai.OpenAI) -> None:
    prompt = "The quick brown fox"
    chunks = list(client.completions.create(model="tiny", prompt=prompt, max_tokens=4, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert TINY_COMPLETIONS[prompt].startswith(text) and len(text) > 4
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4


def test_models_list_and_get(client: openai.OpenAI) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == ["tiny"]
    assert client.models.retrieve("tiny").id == "tiny"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


def test_errors_map_to_sdk_exceptions(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="missing", messages=[{"role": "user", "content": "hi"}])
    assert "missing" in str(not_found.value)
    with pytest.raises(openai.BadRequestError) as bad:
        chat(client, TEST_PROMPT, temperature=5)
    assert bad.value.body["param"] == "temperature"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        chat(client, TEST_PROMPT, stream=True, max_tokens=100000)

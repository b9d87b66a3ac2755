"""OpenAI parameters beyond the basics, through the real SDK and raw HTTP on the tiny model:
logprobs, beams, echo, token limits, special tokens, structured output, refusals."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.helpers.http import assert_openai_error, post
from tests.helpers.server import Server, start_server
from tests.models import TINY_COMPLETIONS, TINY_JSON_ANSWER, TINY_JSON_PROMPT, TINY_PROMPTS

TEST_PROMPT = "Say this is a test"
CHAT = "/v3/chat/completions"


def chat(client: openai.OpenAI, prompt: str, **kwargs: Any) -> Any:
    return client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": prompt}], **kwargs)


def test_chat_logprobs_unary_and_streaming(client: openai.OpenAI) -> None:
    completion = chat(client, TEST_PROMPT, logprobs=True)
    choice = completion.choices[0]
    entries = choice.logprobs.content
    assert len(entries) == completion.usage.completion_tokens  # one per generated token (the end token too)
    assert all(e.logprob <= 0 and e.top_logprobs == [] for e in entries)
    assert "".join(e.token for e in entries).startswith(TINY_PROMPTS[TEST_PROMPT])  # the tokens spell the text
    assert all(bytes(e.bytes).decode("utf-8", "replace") == e.token for e in entries)
    assert math.exp(sum(e.logprob for e in entries)) > 0.5  # the trained answer is likely
    streamed = [c for c in chat(client, TEST_PROMPT, logprobs=True, stream=True) if c.choices and c.choices[0].logprobs]
    tokens = [e.token for c in streamed for e in c.choices[0].logprobs.content]
    assert tokens == [e.token for e in entries]


def test_top_logprobs_one_under_greedy_decoding(client: openai.OpenAI) -> None:
    completion = chat(client, TEST_PROMPT, logprobs=True, top_logprobs=1)
    for entry in completion.choices[0].logprobs.content:
        assert [(t.token, t.logprob) for t in entry.top_logprobs] == [(entry.token, entry.logprob)]
    legacy = client.completions.create(model="tiny", prompt="The capital of France is", max_tokens=3, logprobs=1)
    lp = legacy.choices[0].logprobs
    assert lp.top_logprobs == [{t: x} for t, x in zip(lp.tokens, lp.token_logprobs, strict=True)]


def test_completion_logprobs(client: openai.OpenAI) -> None:
    prompt = "The capital of France is"
    completion = client.completions.create(model="tiny", prompt=prompt, max_tokens=4, logprobs=1)
    lp = completion.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.text_offset) == completion.usage.completion_tokens
    assert all(x <= 0 for x in lp.token_logprobs)
    assert lp.text_offset[0] == 0 and lp.text_offset == sorted(lp.text_offset)
    assert "".join(lp.tokens).startswith(completion.choices[0].text)


def test_echo_prepends_the_prompt(client: openai.OpenAI) -> None:
    prompt = "The capital of France is"
    completion = client.completions.create(model="tiny", prompt=prompt, max_tokens=4, echo=True)
    assert completion.choices[0].text.startswith(prompt + TINY_COMPLETIONS[prompt][:4])
    streamed = "".join(
        c.choices[0].text for c in client.completions.create(model="tiny", prompt=prompt, max_tokens=4, echo=True, stream=True)
    )
    assert streamed == completion.choices[0].text


def test_beam_search_returns_n_ranked_choices(client: openai.OpenAI) -> None:
    completion = client.completions.create(model="tiny", prompt="The capital of France is", max_tokens=6, n=2, best_of=3)
    assert [c.index for c in completion.choices] == [0, 1]
    assert completion.choices[0].text.startswith(" Paris")  # the best beam is the trained answer
    assert completion.choices[0].text != completion.choices[1].text
    beams = chat(client, TEST_PROMPT, extra_body={"best_of": 2, "length_penalty": 1.0})
    assert beams.choices[0].message.content == TINY_PROMPTS[TEST_PROMPT]


def test_min_tokens_and_stop_token_ids(client: openai.OpenAI, tiny_model_dir: Any) -> None:
    short = chat(client, TEST_PROMPT)
    assert short.choices[0].finish_reason == "stop"
    longer = chat(client, TEST_PROMPT, max_tokens=20, extra_body={"min_tokens": short.usage.completion_tokens + 3})
    assert longer.usage.completion_tokens >= short.usage.completion_tokens + 3  # the end token was held off
    from calculators.llm.model_files import ModelTokenizer

    tokenizer = ModelTokenizer.load(tiny_model_dir)
    test_id = tokenizer.encode(" test", add_special_tokens=False)[0]
    cut = chat(client, TEST_PROMPT, extra_body={"stop_token_ids": [test_id]})
    assert cut.choices[0].finish_reason == "stop"
    assert TINY_PROMPTS[TEST_PROMPT].startswith(cut.choices[0].message.content)
    assert len(cut.choices[0].message.content) < len(TINY_PROMPTS[TEST_PROMPT])


def test_skip_special_tokens_false_shows_the_end_token(client: openai.OpenAI) -> None:
    shown = chat(client, TEST_PROMPT, extra_body={"skip_special_tokens": False})
    assert shown.choices[0].message.content == TINY_PROMPTS[TEST_PROMPT] + "<|im_end|>"


def test_response_format_json_schema_is_followed(client: openai.OpenAI) -> None:
    prompt = TINY_JSON_PROMPT
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "color": {"type": "string"}},
        "required": ["name", "age", "color"],
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "cat", "schema": schema}}
    completion = chat(client, prompt, max_tokens=60, response_format=fmt)
    value = json.loads(completion.choices[0].message.content)
    assert value == json.loads(TINY_JSON_ANSWER)  # the trained answer fits the schema
    parsed = client.chat.completions.parse(model="tiny", messages=[{"role": "user", "content": prompt}], max_tokens=60, response_format=fmt)
    assert parsed.choices[0].message.content == completion.choices[0].message.content


def test_system_fingerprint_and_ids_in_every_chunk(client: openai.OpenAI) -> None:
    chunks = list(chat(client, TEST_PROMPT, stream=True))
    assert {c.system_fingerprint for c in chunks} == {"ovserve-0.1.0"}
    assert len({c.id for c in chunks}) == 1


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"logit_bias": {"5": 10}}, "logit_bias"),
        ({"logprobs": True, "top_logprobs": 3}, "top_logprobs"),
        ({"logprobs": True, "top_logprobs": 1, "temperature": 0.8}, "top_logprobs"),
        ({"best_of": 2, "stream": True}, "best_of"),
        ({"best_of": 2, "n": 3}, "best_of"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/cat.png"}}]}]},
            "messages.0.content",
        ),
        ({"messages": [{"role": "tool", "content": "18 degrees"}]}, "messages.0.tool_call_id"),
    ],
)
def test_unsupported_combinations_are_clear_400s(server: Server, extra: dict[str, Any], param: str) -> None:
    body = {"model": "tiny", "messages": [{"role": "user", "content": TEST_PROMPT}], **extra}
    status, _, reply = post(server, CHAT, body)
    assert_openai_error(status, reply, 400, param)


def test_completion_refusals(server: Server) -> None:
    for extra, param in (
        ({"logprobs": 3}, "logprobs"),
        ({"suffix": "end"}, "suffix"),
        ({"prompt": ["a", "b"]}, "prompt"),
        ({"prompt": [10**6]}, "prompt"),
        ({"prompt": []}, "prompt"),
    ):
        status, _, reply = post(server, "/v3/completions", {"model": "tiny", "prompt": "The capital", **extra})
        assert_openai_error(status, reply, 400, param)


def test_tokenize_counts_what_a_request_costs(server: Server, client: openai.OpenAI) -> None:
    prompt = "The capital of France is"
    status, _, body = post(server, "/v3/tokenize", {"model": "tiny", "prompt": prompt})
    assert status == 200
    tokenized = json.loads(body)
    completion = client.completions.create(model="tiny", prompt=prompt, max_tokens=2)
    assert tokenized["count"] == len(tokenized["tokens"]) == completion.usage.prompt_tokens
    assert tokenized["max_model_len"] == 512
    messages = [{"role": "user", "content": TEST_PROMPT}]
    status, _, body = post(server, "/v3/tokenize", {"model": "tiny", "messages": messages})
    assert status == 200 and json.loads(body)["count"] == chat(client, TEST_PROMPT).usage.prompt_tokens
    status, _, body = post(server, "/v3/detokenize", {"model": "tiny", "tokens": tokenized["tokens"]})
    assert status == 200 and json.loads(body) == {"prompt": prompt}


def test_tokenize_errors(server: Server) -> None:
    status, _, body = post(server, "/v3/detokenize", {"model": "tiny", "tokens": [10**6]})
    assert_openai_error(status, body, 400, "tokens")
    status, _, body = post(server, "/v3/tokenize", {"model": "nope", "prompt": "x"})
    assert_openai_error(status, body, 404, "model")
    status, _, body = post(server, "/v3/tokenize", {"model": "tiny", "prompt": 5})
    assert_openai_error(status, body, 400, "prompt")


def test_chat_template_kwargs_reach_the_template(client: openai.OpenAI) -> None:
    from tests.models import TINY_THINK_ANSWER, TINY_THINK_PROMPT

    thinking = chat(client, TINY_THINK_PROMPT)  # no reasoning parser on this server: the block shows
    assert thinking.choices[0].message.content.startswith("<think>")
    direct = chat(client, TINY_THINK_PROMPT, extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    assert direct.choices[0].message.content == TINY_THINK_ANSWER
    assert direct.usage.prompt_tokens > thinking.usage.prompt_tokens  # the empty think block is in the prompt


@pytest.fixture(scope="module")
def no_prefix_cache_client(tiny_model_dir: Any) -> Iterator[openai.OpenAI]:
    srv = start_server("--model_path", str(tiny_model_dir), "--model_name", "tiny", "--enable_prefix_caching", "false")
    try:
        with openai.OpenAI(base_url=srv.base_url + "/v3", api_key="unused", max_retries=0) as sdk:
            yield sdk
    finally:
        assert srv.stop() == 0


def test_max_tokens_zero_needs_echo_with_logprobs(server: Server) -> None:
    """max_tokens 0 scores the prompt (tests/e2e/test_loglikelihood.py); alone it is a 400."""
    for extra in ({}, {"echo": True}, {"logprobs": 1}):
        status, _, reply = post(server, "/v3/completions", {"model": "tiny", "prompt": "The capital", "max_tokens": 0, **extra})
        assert_openai_error(status, reply, 400, "max_tokens")


def test_echo_with_logprobs_scores_the_prompt(no_prefix_cache_client: openai.OpenAI) -> None:
    """What lm-evaluation-harness sends for log-likelihood tasks; asked twice, as it would."""
    client = no_prefix_cache_client
    prompt = "The capital of France is"
    client.completions.create(model="tiny", prompt=prompt, max_tokens=1, echo=True, logprobs=1)
    completion = client.completions.create(model="tiny", prompt=prompt, max_tokens=1, echo=True, logprobs=1, temperature=0)
    choice = completion.choices[0]
    lp = choice.logprobs
    assert choice.text.startswith(prompt) and len(choice.text) > len(prompt)
    assert len(lp.tokens) == completion.usage.prompt_tokens + completion.usage.completion_tokens
    assert lp.token_logprobs[0] is None and all(x <= 0 for x in lp.token_logprobs[1:])
    assert "".join(lp.tokens) == choice.text and lp.text_offset[0] == 0
    streamed = list(client.completions.create(model="tiny", prompt=prompt, max_tokens=1, echo=True, logprobs=1, stream=True))
    tokens = [t for c in streamed if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.tokens]
    assert tokens == lp.tokens


def test_prompt_as_token_ids(server: Server, client: openai.OpenAI) -> None:
    prompt = "The capital of France is"
    status, _, body = post(server, "/v3/tokenize", {"model": "tiny", "prompt": prompt})
    ids = json.loads(body)["tokens"]
    by_text = client.completions.create(model="tiny", prompt=prompt, max_tokens=4)
    for form in (ids, [ids]):
        by_ids = client.completions.create(model="tiny", prompt=form, max_tokens=4)
        assert by_ids.choices[0].text == by_text.choices[0].text
        assert by_ids.usage.prompt_tokens == len(ids)
    echoed = client.completions.create(model="tiny", prompt=ids, max_tokens=2, echo=True)
    assert echoed.choices[0].text.startswith(prompt)

"""The real-model tier (issue 15, item 3): SmolLM2-135M-Instruct (the pinned wheel's GGUF) behind
one server, driven by the OpenAI SDK and raw HTTP. Nothing here depends on memorised answers
beyond robust facts ("capital of France" -> "Paris"): each test compares properties (text
agreement between unary and streaming, stop strings picked from a first greedy run, token
counts, log-probability shapes, tokenize/detokenize round trips)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from calculators.llm import gguf
from calculators.llm.vocab import gguf_token_bytes
from serving.demo import smollm2_gguf
from tests.helpers.http import assert_openai_error, post
from tests.helpers.server import Server, start_smollm2

MODEL = "smollm2"


def user(content: str) -> Any:  # Any: the SDK's message TypedDicts and raw JSON bodies alike
    return [{"role": "user", "content": content}]


CONTEXT = 8192  # llama.context_length in the GGUF
EOS = "<|im_end|>"
SEA = user("Describe the sea in two sentences.")
MULTI_BYTE = ["Café 日本語 🙂", "こんにちは、世界！", "emoji: 👩\u200d👩\u200d👧 🎉🚀", "Ünïcödé — ½ ≠ ∞", "  spaces\tand\nnewlines  "]


@pytest.fixture(scope="module")
def server(smollm2_cache_dir: Path) -> Iterator[Server]:
    running = start_smollm2(smollm2_cache_dir, "--model_name", MODEL, "--enable_prefix_caching", "true")
    yield running
    assert running.stop() == 0, "\n".join(running.output)


def sse(server: Server, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The chunks of a streamed answer over raw HTTP; checks the framing ends with [DONE]."""
    status, headers, raw = post(server, path, {**body, "stream": True})
    assert status == 200, raw
    assert headers["Content-Type"].startswith("text/event-stream")
    events = [event for event in raw.decode().split("\n\n") if event]
    assert events[-1] == "data: [DONE]", events[-3:]
    assert all(event.startswith("data: ") for event in events)
    return [json.loads(event[len("data: ") :]) for event in events[:-1]]


def tokenize(server: Server, text: str) -> list[int]:
    status, _, body = post(server, "/v3/tokenize", {"model": MODEL, "prompt": text})
    assert status == 200, body
    tokens: list[int] = json.loads(body)["tokens"]
    return tokens


def streamed_chat(client: openai.OpenAI, **kwargs: Any) -> tuple[list[str], str | None]:
    """The content pieces of a streamed chat (one choice) and its finish_reason."""
    pieces, finish = [], None
    for chunk in client.chat.completions.create(model=MODEL, stream=True, **kwargs):
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    return pieces, finish


def test_sanity_capital_of_france(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model=MODEL, messages=user("What is the capital of France?"), max_tokens=40, temperature=0)
    assert "Paris" in (reply.choices[0].message.content or "")
    assert reply.choices[0].finish_reason == "stop"


def test_chat_unary_and_streaming_agree(server: Server, client: openai.OpenAI) -> None:
    unary = client.chat.completions.create(model=MODEL, messages=SEA, max_tokens=24, temperature=0)
    text = unary.choices[0].message.content or ""
    assert unary.usage is not None and 0 < unary.usage.completion_tokens <= 24 and text.strip()
    pieces, finish = streamed_chat(client, messages=SEA, max_tokens=24, temperature=0)
    assert "".join(pieces) == text and finish == unary.choices[0].finish_reason
    # Raw HTTP: the same text, role first, usage last when asked for.
    body = {"model": MODEL, "messages": SEA, "max_tokens": 24, "temperature": 0, "stream_options": {"include_usage": True}}
    chunks = sse(server, "/v3/chat/completions", body)
    assert chunks[0]["choices"][0]["delta"].get("role") == "assistant"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == text
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == unary.usage.completion_tokens


def test_completions_unary_and_streaming_agree(server: Server, client: openai.OpenAI) -> None:
    prompt = "The three primary colors are"
    unary = client.completions.create(model=MODEL, prompt=prompt, max_tokens=16, temperature=0)
    text = unary.choices[0].text
    assert text.strip() and unary.usage is not None and unary.usage.prompt_tokens == len(tokenize(server, prompt))
    streamed = "".join(
        c.choices[0].text
        for c in client.completions.create(model=MODEL, prompt=prompt, max_tokens=16, temperature=0, stream=True)
        if c.choices
    )
    assert streamed == text
    chunks = sse(server, "/v3/completions", {"model": MODEL, "prompt": prompt, "max_tokens": 16, "temperature": 0})
    assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == text


def without_eos(tokens: list[str]) -> list[str]:
    """Logprobs cover every generated token, the eos that ended the answer too (as vLLM's do),
    while the text leaves it out (skip_special_tokens)."""
    return tokens[:-1] if tokens and tokens[-1] == EOS else tokens


def _stop_candidates(tokens: list[str], text: str) -> tuple[str, str]:
    """From a greedy answer's tokens: a stop string strictly inside one token, and one across
    two tokens (so across two engine steps, hence chunks), each first found where it was taken."""
    offsets = [0]
    for token in tokens:
        offsets.append(offsets[-1] + len(token))
    inside = across = None
    for k, token in enumerate(tokens[1:-1], 1):
        candidate = token[1:-1]
        if inside is None and len(token) >= 5 and candidate.isalpha() and text.find(candidate) == offsets[k] + 1:
            inside = candidate
        after = tokens[k + 1]
        candidate = token[-2:] + after[:2]
        if across is None and len(token) >= 3 and len(after) >= 3 and candidate.isascii() and text.find(candidate) == offsets[k + 1] - 2:
            across = candidate
    assert inside and across, tokens
    return inside, across


def test_stop_strings_inside_a_token_and_across_chunks(server: Server, client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model=MODEL, messages=SEA, max_tokens=32, temperature=0, logprobs=True)
    text = first.choices[0].message.content or ""
    assert first.choices[0].logprobs is not None and first.choices[0].logprobs.content is not None
    tokens = without_eos([entry.token for entry in first.choices[0].logprobs.content])
    assert "".join(tokens) == text  # plain ASCII answer: token texts are exact
    for stop in _stop_candidates(tokens, text):
        expected = text[: text.find(stop)]
        status, _, body = post(
            server, "/v3/chat/completions", {"model": MODEL, "messages": SEA, "max_tokens": 32, "temperature": 0, "stop": [stop]}
        )
        unary = json.loads(body)["choices"][0]
        assert status == 200 and (unary["message"]["content"], unary["finish_reason"]) == (expected, "stop"), (stop, body)
        pieces, finish = streamed_chat(client, messages=SEA, max_tokens=32, temperature=0, stop=stop)
        assert ("".join(pieces), finish) == (expected, "stop"), (stop, pieces)
        assert not any(stop in piece for piece in pieces)


def test_ignore_eos_gives_exactly_max_tokens_of_real_text(client: openai.OpenAI) -> None:
    # Without ignore_eos this answer ends after a few tokens (eos), well before 40.
    question = user("What is the capital of France?")
    reply = client.chat.completions.create(model=MODEL, messages=question, max_tokens=40, temperature=0, extra_body={"ignore_eos": True})
    text = reply.choices[0].message.content or ""
    assert reply.usage is not None and reply.usage.completion_tokens == 40
    assert reply.choices[0].finish_reason == "length"
    assert "Paris" in text and len(text.split()) >= 10 and "<|im_end|>" not in text
    completion = client.completions.create(model=MODEL, prompt="Hello", max_tokens=17, temperature=0, extra_body={"ignore_eos": True})
    assert completion.usage is not None and completion.usage.completion_tokens == 17
    assert completion.choices[0].finish_reason == "length" and completion.choices[0].text.strip()


def test_seed_makes_sampling_repeatable(client: openai.OpenAI) -> None:
    def sample(seed: int) -> str:
        reply = client.chat.completions.create(model=MODEL, messages=user("Tell me a story."), max_tokens=12, temperature=1.0, seed=seed)
        return reply.choices[0].message.content or ""

    answers = [sample(seed) for seed in (1, 2, 3, 4)]
    assert sample(1) == answers[0]
    assert sample(3) == answers[2]
    assert len(set(answers)) > 1, answers  # four seeds giving one text: the seed is ignored


POEM = "Write a short poem about the sea."


@pytest.mark.xfail(
    strict=True,
    reason="genai 2026.4 with prefix caching: the request after a sampled one that ended at its first token "
    "(eos), on the same prompt, samples differently for the same seed; ContinuousBatchingPipeline driven "
    "directly does the same, and does not with prefix caching off (NOTES, known open bugs)",
)
def test_seed_after_a_request_that_ended_at_its_first_token(client: openai.OpenAI) -> None:
    def sample(seed: int) -> tuple[str, str]:
        reply = client.completions.create(model=MODEL, prompt=POEM, max_tokens=12, temperature=1.0, seed=seed)
        return reply.choices[0].text, reply.choices[0].finish_reason

    before = sample(3)
    if sample(1) != ("", "stop"):  # seed 1 answers eos at once on this prompt (the precondition)
        pytest.skip("seed 1 no longer ends at its first token")
    assert sample(3) == before


def test_n_choices(server: Server, client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model=MODEL, messages=SEA, max_tokens=8, temperature=1.0, n=3, seed=7)
    assert sorted(choice.index for choice in reply.choices) == [0, 1, 2]
    assert all((choice.message.content or "").strip() for choice in reply.choices)
    assert reply.usage is not None and reply.usage.completion_tokens <= 3 * 8
    chunks = sse(server, "/v3/completions", {"model": MODEL, "prompt": "Once upon a time", "max_tokens": 6, "temperature": 1.0, "n": 2})
    texts: dict[int, str] = {}
    finishes: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            texts[choice["index"]] = texts.get(choice["index"], "") + choice["text"]
            if choice.get("finish_reason"):
                finishes[choice["index"]] = choice["finish_reason"]
    assert sorted(texts) == sorted(finishes) == [0, 1]


def test_logprobs_shapes(client: openai.OpenAI) -> None:
    chat = client.chat.completions.create(model=MODEL, messages=SEA, max_tokens=16, temperature=0, logprobs=True, top_logprobs=1)
    content = chat.choices[0].logprobs.content if chat.choices[0].logprobs else None
    assert content is not None and chat.usage is not None and len(content) == chat.usage.completion_tokens
    kept = content[: len(without_eos([entry.token for entry in content]))]
    assert bytes(b for entry in kept for b in (entry.bytes or [])).decode() == chat.choices[0].message.content
    for entry in content:
        assert entry.logprob <= 0 and len(entry.top_logprobs) == 1
        assert (entry.top_logprobs[0].token, entry.top_logprobs[0].logprob) == (entry.token, entry.logprob)  # greedy: the top one
    completion = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=16, temperature=0, logprobs=1)
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.tokens is not None and logprobs.token_logprobs is not None
    assert "".join(logprobs.tokens) == completion.choices[0].text
    assert len(logprobs.tokens) == len(logprobs.token_logprobs) == len(logprobs.text_offset or []) == len(logprobs.top_logprobs or [])
    assert all(value <= 0 for value in logprobs.token_logprobs)
    assert [len(t) for t in logprobs.tokens[:-1]] == [
        b - a for a, b in zip(logprobs.text_offset or [], (logprobs.text_offset or [])[1:], strict=False)
    ]


@pytest.mark.parametrize(
    "prompt",
    ["日本語: こんにちは、", "Emoji: 🙂🎉🚀 "],
    ids=["japanese", "emoji"],
)
def test_multi_byte_text_streams_whole_characters(server: Server, prompt: str) -> None:
    body = {"model": MODEL, "prompt": prompt, "max_tokens": 24, "temperature": 0}
    status, _, raw = post(server, "/v3/completions", body)
    assert status == 200, raw
    unary = json.loads(raw)["choices"][0]["text"]
    assert any(ord(ch) > 0x7F for ch in unary), unary  # the model did write non-ASCII text
    pieces = [c["choices"][0]["text"] for c in sse(server, "/v3/completions", body) if c["choices"]]
    assert not any("\ufffd" in piece for piece in pieces), pieces
    assert "".join(pieces) == unary


def test_tokenize_detokenize_round_trip_on_the_gguf_vocabulary(server: Server) -> None:
    table = gguf_token_bytes("gpt2", gguf.read_metadata(smollm2_gguf())["tokenizer.ggml.tokens"], [])
    assert table is not None
    for text in MULTI_BYTE:
        tokens = tokenize(server, text)
        assert b"".join(table.table[i] for i in tokens) == text.encode(), text
        status, _, body = post(server, "/v3/detokenize", {"model": MODEL, "tokens": tokens})
        assert status == 200 and json.loads(body)["prompt"] == text


def test_context_limit_is_a_clean_400(server: Server) -> None:
    unit = tokenize(server, " hello")
    assert len(unit) == 1
    base = "hello"
    fits = base + " hello" * (CONTEXT - 1 - len(tokenize(server, base)))
    assert len(tokenize(server, fits)) == CONTEXT - 1
    prompt = fits + " hello"  # CONTEXT tokens: no room for one generated token
    status, _, body = post(server, "/v3/tokenize", {"model": MODEL, "prompt": prompt})
    assert assert_openai_error(status, body, 400, "prompt")["code"] == "context_length_exceeded"
    status, _, body = post(server, "/v3/completions", {"model": MODEL, "prompt": prompt, "max_tokens": 1})
    error = assert_openai_error(status, body, 400, "prompt")
    assert error["code"] == "context_length_exceeded" and f"{CONTEXT}" in error["message"]
    # A prompt that fits, with max_tokens past the context: named on max_tokens (no prefill run).
    status, _, body = post(server, "/v3/completions", {"model": MODEL, "prompt": fits, "max_tokens": 2})
    assert assert_openai_error(status, body, 400, "max_tokens")["code"] == "context_length_exceeded"
    status, _, body = post(server, "/v3/chat/completions", {"model": MODEL, "messages": user(prompt), "max_tokens": 1})
    assert assert_openai_error(status, body, 400, "messages")["code"] == "context_length_exceeded"
    assert "Traceback" not in body.decode()


def _timed_chat(server: Server, messages: list[dict[str, str]]) -> tuple[float, str, int]:
    """(seconds to the first content chunk, the answer, prompt tokens) of a greedy streamed chat."""
    body = {"model": MODEL, "messages": messages, "max_tokens": 12, "temperature": 0, "stream_options": {"include_usage": True}}
    started = time.perf_counter()
    chunks = sse(server, "/v3/chat/completions", body)
    # The whole answer is read at once (raw HTTP): the time to the last byte stands in for the
    # prefill, the 12 decoded tokens cost the same in both runs.
    elapsed = time.perf_counter() - started
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    return elapsed, text, chunks[-1]["usage"]["prompt_tokens"]


def test_prefix_caching_on_a_long_conversation(server: Server) -> None:
    """A ~1,000-token conversation asked twice: the same greedy answer (the second run reuses
    the cached prefix). The usage carries no cached-token figure, so the time is only printed."""
    words = "river stone light north garden paper window silver market quiet morning engine harbor".split()
    story = " ".join(words[(i * 7) % len(words)] for i in range(1000))
    messages = [
        {"role": "user", "content": f"Remember these words: {story}"},
        {"role": "assistant", "content": "I will remember them."},
        {"role": "user", "content": "Which word came first?"},
    ]
    status, _, body = post(server, "/v3/tokenize", {"model": MODEL, "messages": messages})
    assert status == 200 and json.loads(body)["count"] >= 1000
    first_s, first, prompt_tokens = _timed_chat(server, messages)
    second_s, second, _ = _timed_chat(server, messages)
    assert second == first and first.strip() and prompt_tokens == json.loads(body)["count"]
    follow_up = [*messages, {"role": "assistant", "content": first}, {"role": "user", "content": "And the last?"}]
    third_s, third, _ = _timed_chat(server, follow_up)
    assert third.strip()
    print(f"prefix caching, {prompt_tokens} prompt tokens: first {first_s:.3f} s, repeat {second_s:.3f} s, next turn {third_s:.3f} s")

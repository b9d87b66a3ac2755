"""`--pipeline_type LM` (the stateful openvino_genai.LLMPipeline, one request at a time) on CPU,
against the real engine: exact answers, token-by-token streaming, queued concurrent requests, a
client disconnect that frees the engine, and clear 400s for what the pipeline cannot do.

The engine worker is paused with SIGSTOP where a request must surely be in flight: nothing here
depends on how fast the model is.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.helpers.http import CHAT, RawStream, assert_openai_error, get, post, user
from tests.helpers.server import Server, start_server, wait_for
from tests.models import TINY_PROMPTS

BOUND_S = 120  # guards against a hang only
LONG = {"model": "tiny", "messages": user("Tell me a story."), "stream": True, "max_tokens": 400, "ignore_eos": True}


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path) -> Iterator[Server]:
    srv = start_server("--model_path", str(tiny_model_dir), "--model_name", "tiny", "--pipeline_type", "LM")
    yield srv
    assert srv.stop() == 0


@pytest.fixture()
def client(server: Server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url + "/v3", api_key="x", max_retries=0) as c:
        yield c


def engine(server: Server) -> dict[str, Any]:
    status, body = get(server, "/debug/stats")
    assert status == 200
    return json.loads(body)["servables"]["tiny"]["resources"]["llm"]  # type: ignore[no-any-return]


def test_lm_loads_the_stateful_pipeline(server: Server) -> None:
    assert any("pipeline LM" in line for line in server.output), server.output


def test_lm_answers_exactly(client: openai.OpenAI) -> None:
    for prompt, answer in TINY_PROMPTS.items():
        reply = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": prompt}])
        assert reply.choices[0].message.content == answer, prompt
        assert reply.choices[0].finish_reason == "stop"
        assert reply.usage is not None and reply.usage.completion_tokens > 0


def test_lm_length_limit(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "Tell me a story."}], max_tokens=3)
    assert reply.choices[0].finish_reason == "length" and reply.usage is not None and reply.usage.completion_tokens == 3


def test_lm_streams_token_by_token(client: openai.OpenAI) -> None:
    prompt = "Say this is a test"
    stream = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": prompt}], stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == TINY_PROMPTS[prompt]
    assert len(pieces) > 3  # one chunk per token, not one at the end
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= len(pieces)


def test_lm_concurrent_requests_are_all_answered(server: Server) -> None:
    """Requests that come together wait in the worker's queue and are answered one by one."""
    worker = engine(server)["pid"]
    prompts = list(TINY_PROMPTS) * 2
    os.kill(worker, signal.SIGSTOP)  # every request reaches the worker before the first runs
    try:
        with concurrent.futures.ThreadPoolExecutor(len(prompts)) as pool:
            futures = [pool.submit(post, server, CHAT, {"model": "tiny", "messages": user(p)}) for p in prompts]
            wait_for(lambda: engine(server)["active_requests"] == len(prompts), "every request submitted")
            os.kill(worker, signal.SIGCONT)
            replies = [f.result(timeout=BOUND_S) for f in futures]
    finally:
        os.kill(worker, signal.SIGCONT)
    for prompt, (status, _headers, body) in zip(prompts, replies, strict=True):
        assert status == 200, body
        assert json.loads(body)["choices"][0]["message"]["content"] == TINY_PROMPTS[prompt]
    wait_for(lambda: engine(server)["running"] == 0, "the worker's queue is empty")


def test_lm_disconnect_frees_the_engine(server: Server, client: openai.OpenAI) -> None:
    before = engine(server)
    worker = before["pid"]
    stream = RawStream(server, LONG)
    try:
        stream.read_until(b'"content":"')  # generating
        os.kill(worker, signal.SIGSTOP)  # hold it in the middle of its 400 tokens
        stream.sock.close()  # the client goes away
        wait_for(lambda: engine(server)["active_requests"] == 0, "the server cancelled the request")
    finally:
        os.kill(worker, signal.SIGCONT)
    wait_for(lambda: engine(server)["cancelled"] == before["cancelled"] + 1, "the worker stopped the generation")
    prompt = "What is the capital of France?"
    reply = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": prompt}])
    assert reply.choices[0].message.content == TINY_PROMPTS[prompt]
    after = engine(server)
    assert after["running"] == 0 and after["finished"] == before["finished"] + 1


def test_lm_cancel_while_queued(server: Server, client: openai.OpenAI) -> None:
    """A request cancelled while it waits behind another is dropped from the queue."""
    before = engine(server)
    worker = before["pid"]
    os.kill(worker, signal.SIGSTOP)
    try:
        first, second = RawStream(server, LONG), RawStream(server, LONG)
        wait_for(lambda: engine(server)["active_requests"] == 2, "both requests submitted")
        second.sock.close()
        first.sock.close()
        wait_for(lambda: engine(server)["active_requests"] == 0, "the server cancelled both")
    finally:
        os.kill(worker, signal.SIGCONT)
    wait_for(lambda: engine(server)["cancelled"] == before["cancelled"] + 2, "the worker dropped both")
    reply = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "Count to five."}])
    assert reply.choices[0].message.content == TINY_PROMPTS["Count to five."]


@pytest.mark.parametrize(
    ("path", "extra", "param"),
    [
        (CHAT, {"n": 2, "temperature": 1.0}, "n"),
        (CHAT, {"n": 2, "temperature": 1.0, "stream": True}, "n"),
        (CHAT, {"best_of": 2, "temperature": 0}, "best_of"),
        (CHAT, {"num_beams": 2}, "num_beams"),
        (CHAT, {"logprobs": True}, "logprobs"),
        ("/v3/completions", {"logprobs": 1}, "logprobs"),
        ("/v3/completions", {"echo": True}, "echo"),
    ],
)
def test_lm_refuses_what_it_cannot_do(server: Server, path: str, extra: dict[str, Any], param: str) -> None:
    body: dict[str, Any] = {"model": "tiny", **extra}
    if path == CHAT:
        body["messages"] = user("Say this is a test")
    else:
        body["prompt"] = "Say this is a test"
    status, _headers, raw = post(server, path, body)
    error = assert_openai_error(status, raw, 400, param)
    assert "pipeline_type LM" in error["message"], error

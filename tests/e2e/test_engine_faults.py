"""Engine faults on real servers: a request the KV cache can never hold, and an engine worker
killed in the middle of a batch.

What genai 2026.4 does with a request that does not fit its KV cache: while other requests hold
blocks it preempts them (they are recomputed later and finish correctly); a request that cannot
fit even alone runs until the cache is full and is then IGNORED. That can never succeed on a
retry, so the client gets a 400 (`context_length_exceeded`), in-band in a started stream.

The engine worker is paused with SIGSTOP while requests are put in flight, so they are surely in
the engine together when something happens: nothing here depends on how fast the model is.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.http import CHAT, RawStream, assert_openai_error, get, post, user
from tests.helpers.processes import paused
from tests.helpers.servables import llm_graph, write_config
from tests.helpers.server import Server, start_server, wait_for
from tests.helpers.stats import engine
from tests.models import TINY_PROMPTS

BOUND_S = 120  # guards against a hang only
STORY = "Tell me a story."


def content(stream: RawStream) -> str:
    return "".join(e["choices"][0]["delta"].get("content") or "" for e in stream.events() if e.get("choices"))


def in_band_errors(stream: RawStream) -> list[dict[str, Any]]:
    return [e["error"] for e in stream.events() if "error" in e]


# -- a KV cache too small for one request ----------------------------------------------------


@pytest.fixture(scope="module")
def small_cache_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # 4 blocks of 32 tokens: the short prompts fit many times over, a 300-token story never does.
    root = tmp_path_factory.mktemp("small-kv")
    server = start_server("--config_path", str(write_config(root, {"tiny": llm_graph(tiny_model_dir, "num_kv_blocks: 4")})))
    yield server
    assert server.stop() == 0, "\n".join(server.output)


def test_a_request_the_kv_cache_cannot_hold(small_cache_server: Server) -> None:
    server = small_cache_server
    long_stream = RawStream(server, {"model": "tiny", "messages": user(STORY), "stream": True, "max_tokens": 300, "ignore_eos": True})
    long_stream.read_until(b"data: ")  # generating
    worker = engine(server, "tiny")["pid"]
    prompts = [p for p in TINY_PROMPTS if p != STORY]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        with paused(worker):  # everything below is in the engine together when it resumes
            short_streams = [RawStream(server, {"model": "tiny", "messages": user(p), "stream": True}) for p in prompts]
            unary = [pool.submit(post, server, CHAT, {"model": "tiny", "messages": user(p)}) for p in prompts]
            wait_for(lambda: engine(server, "tiny")["active_requests"] == 1 + 2 * len(prompts), "every request in the engine")
        # The story cannot fit: a clear in-band error in the stream, then its proper end.
        long_stream.read_to_end()
        errors = in_band_errors(long_stream)
        assert len(errors) == 1, long_stream.received[-800:]
        assert errors[0]["type"] == "invalid_request_error" and errors[0]["code"] == "context_length_exceeded", errors
        assert "KV cache" in errors[0]["message"]
        assert long_stream.received.rstrip().endswith(b"data: [DONE]")
        assert content(long_stream), "the stream had started before the cache ran out"
        # Everything else in flight at the same time finished with its exact answer, or, if genai
        # dropped it after it had started (see worker.ignored()), got a clear 503 to retry.
        for prompt, stream in zip(prompts, short_streams, strict=True):
            stream.read_to_end()
            assert stream.received.rstrip().endswith(b"data: [DONE]")
            if errors := in_band_errors(stream):
                assert errors[0]["type"] == "overloaded_error" and "retry" in errors[0]["message"], errors
            else:
                assert content(stream) == TINY_PROMPTS[prompt]
        for prompt, future in zip(prompts, unary, strict=True):
            status, headers, body = future.result(timeout=BOUND_S)
            if status != 200:
                assert assert_openai_error(status, body, 503)["type"] == "overloaded_error" and headers.get("Retry-After")
                status, _, body = post(server, CHAT, {"model": "tiny", "messages": user(prompt)})  # the retry
            assert status == 200, body
            assert json.loads(body)["choices"][0]["message"]["content"] == TINY_PROMPTS[prompt]
    # Unary: a 400 in OpenAI's shape (a retry cannot help: no Retry-After).
    status, headers, body = post(server, CHAT, {"model": "tiny", "messages": user(STORY), "max_tokens": 300, "ignore_eos": True})
    assert assert_openai_error(status, body, 400)["code"] == "context_length_exceeded"
    assert "Retry-After" not in headers
    # The server keeps serving, on the same worker.
    status, _, body = post(server, CHAT, {"model": "tiny", "messages": user("Say this is a test")})
    assert status == 200 and json.loads(body)["choices"][0]["message"]["content"] == TINY_PROMPTS["Say this is a test"]
    stats = engine(server, "tiny")
    assert stats["pid"] == worker and stats["restarts"] == 0 and stats["active_requests"] == 0


def test_a_prompt_longer_than_the_kv_cache(small_cache_server: Server) -> None:
    """Within the model's context (512) but longer than the cache (128): refused at prefill."""
    prompt = " ".join(["the quick brown fox"] * 40)
    status, headers, body = post(server := small_cache_server, "/v3/completions", {"model": "tiny", "prompt": prompt, "max_tokens": 5})
    assert assert_openai_error(status, body, 400)["code"] == "context_length_exceeded"
    status, _, body = post(server, "/v3/completions", {"model": "tiny", "prompt": "The quick brown fox", "max_tokens": 32})
    assert status == 200 and json.loads(body)["choices"][0]["text"] == " jumps over the lazy dog."


# -- an engine worker killed mid-batch -------------------------------------------------------


@pytest.fixture(scope="module")
def two_llm_server(tiny_model_dir: Path, minilm_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Two LLM servables (two engine workers) and an embeddings servable in one server."""
    from importlib import resources

    embeddings = resources.files("graphs.stock").joinpath("embeddings.pbtxt").read_text(encoding="utf-8")
    embeddings = embeddings.replace('models_path: "./"', f"models_path: {json.dumps(str(minilm_model_dir))}")
    root = tmp_path_factory.mktemp("two-llm")
    config = write_config(root, {"tiny": llm_graph(tiny_model_dir), "other": llm_graph(tiny_model_dir), "minilm": embeddings})
    server = start_server("--config_path", str(config))
    yield server
    assert server.stop() == 0, "\n".join(server.output)


def embed(server: Server) -> list[float]:
    status, _, body = post(server, "/v3/embeddings", {"model": "minilm", "input": "A man is playing a guitar."})
    assert status == 200, body
    return json.loads(body)["data"][0]["embedding"]  # type: ignore[no-any-return]


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_worker_killed_mid_batch(two_llm_server: Server) -> None:
    server = two_llm_server
    reference = embed(server)
    idle_fds = open_fds(server.process.pid)
    before, other = engine(server, "tiny"), engine(server, "other")
    # 470 new tokens each: far more steps than the few it takes to pause the worker below.
    long = {"model": "tiny", "messages": user(STORY), "max_tokens": 470, "ignore_eos": True}
    other_stream = RawStream(server, {"model": "other", "messages": user(STORY), "stream": True})
    other_stream.read_until(b"data: ")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        with paused(before["pid"]):  # all nine reach the engine together, in one batch
            streams = [RawStream(server, {**long, "stream": True}) for _ in range(8)]
            unary = pool.submit(post, server, CHAT, long)
            wait_for(lambda: engine(server, "tiny")["active_requests"] == 9, "nine requests in the engine")
        streams[0].read_until(b"data: ")  # the batch is generating
        os.kill(before["pid"], signal.SIGSTOP)
        assert engine(server, "tiny")["active_requests"] == 9, "all nine still generating"
        os.kill(before["pid"], signal.SIGKILL)
        # Every affected client gets a clear error: in-band then [DONE] for streams, 503 for unary.
        status, headers, body = unary.result(timeout=BOUND_S)
        error = assert_openai_error(status, body, 503)
        assert "engine worker stopped" in error["message"] and headers.get("Retry-After"), (error, headers)
    for stream in streams:
        stream.read_to_end()
        errors = in_band_errors(stream)
        assert len(errors) == 1 and "engine worker stopped" in errors[0]["message"], stream.received[-800:]
        assert errors[0]["type"] == "unavailable_error"
        assert stream.received.rstrip().endswith(b"data: [DONE]")
    # The other servable's worker and the embeddings servable never noticed.
    other_stream.read_to_end()
    assert not in_band_errors(other_stream) and content(other_stream) == TINY_PROMPTS[STORY]
    assert embed(server) == reference
    after_other = engine(server, "other")
    assert after_other["pid"] == other["pid"] and after_other["restarts"] == 0 and after_other["alive"]
    # A new worker comes up; requests after the restart get their exact answers.
    wait_for(lambda: (s := engine(server, "tiny"))["restarts"] >= 1 and s["alive"], "the restarted worker")
    assert engine(server, "tiny")["pid"] != before["pid"]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        prompts = [p for p in TINY_PROMPTS if p != STORY]
        replies = list(pool.map(lambda p: post(server, CHAT, {"model": "tiny", "messages": user(p)}), prompts))
    for prompt, (status, _, body) in zip(prompts, replies, strict=True):
        assert status == 200, body
        assert json.loads(body)["choices"][0]["message"]["content"] == TINY_PROMPTS[prompt]
    assert get(server, "/v2/health/ready")[0] == 200
    stats = engine(server, "tiny")
    assert stats["active_requests"] == 0
    # The dead worker's connection was closed (no descriptor left behind per restart). Polled:
    # the server may still be closing the sockets of the requests just answered.
    wait_for(lambda: open_fds(server.process.pid) <= idle_fds, f"open descriptors back to {idle_fds}")
    assert server.process.poll() is None

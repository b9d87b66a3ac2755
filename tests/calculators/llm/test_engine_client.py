"""EngineClient against the real engine worker process on the tiny model (no mocks)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from calculators.llm.engine.base import WorkerSpec
from calculators.llm.engine.client import EngineClient
from calculators.llm.engine.protocol import Finish
from calculators.llm.model_files import ModelTokenizer
from graphs.errors import InvalidRequestError, UnavailableError
from tests.helpers.engine import GREEDY, HANG_GUARD_S, chat_ids, drain, spec
from tests.models import TINY_COMPLETIONS, TINY_PROMPTS

pytestmark = pytest.mark.asyncio(loop_scope="module")

STORY = "Tell me a story."


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> ModelTokenizer:
    return ModelTokenizer.load(tiny_model_dir)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def engine(tiny_model_dir: Path) -> AsyncIterator[EngineClient]:
    client = await EngineClient.start(spec(tiny_model_dir))
    yield client
    await client.aclose()


async def answer(engine: EngineClient, tokenizer: ModelTokenizer, ids: list[int], config: dict[str, Any] = GREEDY) -> tuple[str, Finish]:
    tokens, finish = await drain(engine.submit(ids, config))
    assert list(tokens) == [0]
    return tokenizer.decode(tokens[0], skip_special_tokens=True), finish[0]


async def test_worker_reports_its_stop_tokens(engine: EngineClient, tokenizer: ModelTokenizer) -> None:
    assert engine.alive
    eos = tokenizer.encode("<|im_end|>", add_special_tokens=False)
    assert eos[0] in engine.info["eos_token_ids"]


async def test_greedy_chat_answer(engine: EngineClient, tokenizer: ModelTokenizer) -> None:
    prompt = "What is the capital of France?"
    assert await answer(engine, tokenizer, chat_ids(tokenizer, prompt)) == (TINY_PROMPTS[prompt], Finish.STOP)
    assert engine.active_requests == 0


async def test_greedy_completion(engine: EngineClient, tokenizer: ModelTokenizer) -> None:
    prompt, expected = next(iter(TINY_COMPLETIONS.items()))
    ids = tokenizer.encode(prompt, add_special_tokens=True)
    text, _ = await answer(engine, tokenizer, ids, {"max_new_tokens": len(expected), "do_sample": False})
    assert text.startswith(expected)


async def test_max_new_tokens_ends_with_length(engine: EngineClient, tokenizer: ModelTokenizer) -> None:
    tokens, finish = await drain(engine.submit(chat_ids(tokenizer, STORY), {"max_new_tokens": 3, "do_sample": False}))
    assert len(tokens[0]) == 3
    assert finish == {0: Finish.LENGTH}
    assert tokenizer.decode(tokens[0]) == tokenizer.decode(tokenizer.encode(TINY_PROMPTS[STORY], add_special_tokens=False)[:3])


async def test_concurrent_requests_each_get_their_own_answer(engine: EngineClient, tokenizer: ModelTokenizer) -> None:
    prompts = list(TINY_PROMPTS) * 2
    streams = [engine.submit(chat_ids(tokenizer, p), GREEDY) for p in prompts]
    assert engine.active_requests == len(prompts)
    results = await asyncio.gather(*(drain(s) for s in streams))
    for prompt, (tokens, finish) in zip(prompts, results, strict=True):
        assert tokenizer.decode(tokens[0]) == TINY_PROMPTS[prompt], prompt
        assert finish == {0: Finish.STOP}
    assert engine.active_requests == 0


async def test_two_sampled_sequences(engine: EngineClient, tokenizer: ModelTokenizer) -> None:
    config = {"max_new_tokens": 8, "do_sample": True, "temperature": 1.0, "num_return_sequences": 2, "rng_seed": 7}
    tokens, finish = await drain(engine.submit(chat_ids(tokenizer, STORY), config))
    assert sorted(tokens) == [0, 1]
    assert sorted(finish) == [0, 1]


async def test_cancel_mid_generation_ends_the_stream_and_the_worker_goes_on(engine: EngineClient, tokenizer: ModelTokenizer) -> None:
    stream = engine.submit(chat_ids(tokenizer, STORY), {"max_new_tokens": 400, "do_sample": False, "ignore_eos": True})
    async with asyncio.timeout(HANG_GUARD_S):
        first = await stream.next()
    assert first is not None and not first.finished and first.deltas[0].token_ids
    stream.cancel()
    stream.cancel()  # idempotent
    assert await stream.next() is None
    assert stream.done and engine.active_requests == 0

    # The worker got the cancel before this request (same connection, in order) and still serves.
    prompt = "Say this is a test"
    assert await answer(engine, tokenizer, chat_ids(tokenizer, prompt)) == (TINY_PROMPTS[prompt], Finish.STOP)
    assert engine.last_stats["cancelled"] >= 1
    assert engine.last_stats["running"] == 0


async def test_cancel_before_the_first_step(engine: EngineClient, tokenizer: ModelTokenizer) -> None:
    stream = engine.submit(chat_ids(tokenizer, STORY), GREEDY)
    stream.cancel()
    assert await stream.next() is None
    prompt = "Count to five."
    assert await answer(engine, tokenizer, chat_ids(tokenizer, prompt)) == (TINY_PROMPTS[prompt], Finish.STOP)


@pytest.mark.parametrize(
    "config",
    [
        {"max_new_tokens": 10, "do_sample": False, "num_return_sequences": 2},
        {"max_new_tokens": 10, "do_sample": True, "top_p": 0.0},
        {"max_new_tokens": 10, "min_new_tokens": 20},
        {"max_new_tokens": 10, "temperature": "hot"},
    ],
    ids=["n2-greedy", "top_p-0", "min-above-max", "wrong-type"],
)
async def test_refused_config_fails_that_request_only(engine: EngineClient, tokenizer: ModelTokenizer, config: dict[str, Any]) -> None:
    prompt = "What color is the sky?"
    good_before = engine.submit(chat_ids(tokenizer, prompt), GREEDY)
    bad = engine.submit(chat_ids(tokenizer, prompt), config)
    good_after = engine.submit(chat_ids(tokenizer, prompt), GREEDY)
    with pytest.raises(InvalidRequestError, match="the engine refused the request"):
        await drain(bad)
    for stream in (good_before, good_after):
        tokens, finish = await drain(stream)
        assert tokenizer.decode(tokens[0]) == TINY_PROMPTS[prompt]
    assert bad.done and engine.active_requests == 0
    assert engine.alive


async def test_killed_worker_fails_pending_and_next_requests(tiny_model_dir: Path, tokenizer: ModelTokenizer) -> None:
    client = await EngineClient.start(spec(tiny_model_dir))
    try:
        running = client.submit(chat_ids(tokenizer, STORY), {"max_new_tokens": 400, "do_sample": False, "ignore_eos": True})
        async with asyncio.timeout(HANG_GUARD_S):
            first = await running.next()
        assert first is not None and not first.finished
        # Another request that the worker may or may not have seen yet.
        queued = client.submit(chat_ids(tokenizer, "Say this is a test"), GREEDY)
        assert client._process is not None
        client._process.kill()

        for stream in (running, queued):
            with pytest.raises(UnavailableError, match="engine worker exited"):
                await drain(stream)
        assert not client.alive
        with pytest.raises(UnavailableError):
            client.submit(chat_ids(tokenizer, "Count to five."), GREEDY)
    finally:
        async with asyncio.timeout(HANG_GUARD_S):
            await client.aclose()
    assert client._process.exitcode is not None


async def test_start_fails_clearly_without_a_model(tmp_path: Path) -> None:
    with pytest.raises(UnavailableError, match="engine failed to load"):
        await EngineClient.start(WorkerSpec(models_path=str(tmp_path)))

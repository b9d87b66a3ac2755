"""EngineClient against real vision-language engine workers (pipeline VLM_CB: continuous batching;
VLM: the stateful VLMPipeline) on the tiny VLM: images in, tokens out, the prompt's image tokens
counted, text-only requests, and what the loops do for text requests, for vision ones."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from calculators.llm.engine.base import WorkerSpec
from calculators.llm.engine.client import EngineClient, RequestStream
from calculators.llm.engine.protocol import Finish
from calculators.llm.guided import GRAMMAR_KEY
from calculators.llm.model_files import ModelTokenizer
from graphs.errors import InvalidRequestError, OverloadedError, UnavailableError
from tests.helpers.engine import HANG_GUARD_S, drain
from tests.helpers.processes import paused
from tests.models import VLM_CASES

pytestmark = pytest.mark.asyncio(loop_scope="module")

SCHEDULER = {"cache_size": 0, "num_kv_blocks": 64, "max_num_batched_tokens": 256}
GREEDY = {"max_new_tokens": 12, "do_sample": False}
QUESTION = "What color is this image?"
RED, GREEN, BLUE = (220, 30, 30), (30, 170, 50), (30, 60, 220)


def solid(rgb: tuple[int, int, int], size: tuple[int, int] = (32, 32)) -> np.ndarray:
    return np.tile(np.array(rgb, dtype=np.uint8), (*size, 1))


def chat(tokenizer: ModelTokenizer, text: str, images: int = 0) -> tuple[str, list[int]]:
    """The rendered prompt (an `<image>`-style tag per image, by the model's template) and its ids."""
    parts: list[dict[str, Any]] = [{"type": "image"}] * images + [{"type": "text", "text": text}]
    rendered = tokenizer.render_chat([{"role": "user", "content": parts}])
    return rendered, tokenizer.encode(rendered, add_special_tokens=False)


async def ask(engine: EngineClient, tokenizer: ModelTokenizer, images: list[np.ndarray], config: dict[str, Any] = GREEDY) -> RequestStream:
    text, ids = chat(tokenizer, QUESTION, len(images))
    return engine.submit(ids, config, text, images)


@pytest.fixture(scope="module")
def tokenizer(tiny_vlm_dir: Path) -> ModelTokenizer:
    return ModelTokenizer.load(tiny_vlm_dir)


@pytest_asyncio.fixture(loop_scope="module", scope="module", params=["VLM_CB", "VLM"])
async def engine(request: pytest.FixtureRequest, tiny_vlm_dir: Path) -> AsyncIterator[EngineClient]:
    client = await EngineClient.start(WorkerSpec(models_path=str(tiny_vlm_dir), scheduler=SCHEDULER, pipeline=request.param))
    yield client
    await client.aclose()


REQUESTS = {  # name: (question, images)
    "red": (QUESTION, [solid(RED)]),
    "blue": (QUESTION, [solid(BLUE, (40, 56))]),
    "two": (QUESTION, [solid(GREEN), solid(RED)]),
    "text": (QUESTION, []),
}


def in_process(model_dir: Path, pipeline: str, tokenizer: ModelTokenizer) -> dict[str, list[int]]:
    """Greedy tokens of REQUESTS from genai in this process, with the pipeline the worker builds
    (the stateful one with its SDPA attention, calculators/llm/engine/stateful_loop.py): what the
    worker must give. (The two pipelines agree on a trained model, not always on random weights.)"""
    import openvino as ov
    import openvino_genai as ov_genai

    config = ov_genai.GenerationConfig(**GREEDY)
    config.apply_chat_template = False
    prompts = {
        name: (chat(tokenizer, question, len(images))[0], [ov.Tensor(i[None].copy()) for i in images])
        for name, (question, images) in REQUESTS.items()
    }
    if pipeline == "VLM":
        vlm = ov_genai.VLMPipeline(str(model_dir), "CPU", ATTENTION_BACKEND="SDPA")
        streamed: dict[str, list[int]] = {}
        for name, (text, images) in prompts.items():
            vlm.generate(text, images=images, generation_config=config, streamer=_collector(ov_genai, streamed.setdefault(name, [])))
        return streamed
    scheduler = ov_genai.SchedulerConfig()
    scheduler.cache_size = 0
    pipe = ov_genai.ContinuousBatchingPipeline(str(model_dir), scheduler, "CPU", {})
    handles = {name: pipe.add_request(i, text, images, config) for i, (name, (text, images)) in enumerate(prompts.items())}
    while pipe.has_non_finished_requests():
        pipe.step()
    return {name: list(handle.read_all()[0].generated_ids) for name, handle in handles.items()}


def _collector(ov_genai: Any, tokens: list[int]) -> Any:
    class Collect(ov_genai.StreamerBase):  # type: ignore[misc]  # token ids (a callable streamer gets text)
        def write(self, token: int | list[int]) -> Any:
            tokens.extend([token] if isinstance(token, int) else token)
            return ov_genai.StreamingStatus.RUNNING

        def end(self) -> None:
            pass

    return Collect()


@pytest.fixture(scope="module")
def answers(engine: EngineClient, tiny_vlm_dir: Path, tokenizer: ModelTokenizer) -> dict[str, list[int]]:
    return in_process(tiny_vlm_dir, engine.info["pipeline"], tokenizer)


@pytest.fixture(scope="module")
def cb_answers(tiny_vlm_dir: Path, tokenizer: ModelTokenizer) -> dict[str, list[int]]:
    return in_process(tiny_vlm_dir, "VLM_CB", tokenizer)


async def test_a_vision_engine_says_so(engine: EngineClient) -> None:
    assert engine.vision and engine.info["vision"] is True
    assert engine.info["pipeline"] in ("VLM_CB", "VLM")


async def test_the_trained_answers(engine: EngineClient, tokenizer: ModelTokenizer) -> None:
    """Every conversation the tiny VLM learnt (a colour, a shape, two images, an image a turn
    earlier, text only), all at once: each exact answer, as the model's chat template renders it."""
    streams = []
    for case in VLM_CASES:
        text = tokenizer.render_chat(case.messages)
        streams.append(engine.submit(tokenizer.encode(text, add_special_tokens=False), {**GREEDY, "max_new_tokens": 24}, text, case.images))
    results = await asyncio.gather(*(drain(stream) for stream in streams))
    got = {case.name: tokenizer.decode(tokens[0]) for case, (tokens, _finish) in zip(VLM_CASES, results, strict=True)}
    assert got == {case.name: case.answer for case in VLM_CASES}
    assert all(finish == {0: Finish.STOP} for _tokens, finish in results)


async def test_images_in_tokens_out(engine: EngineClient, tokenizer: ModelTokenizer, answers: dict[str, list[int]]) -> None:
    tokens, finish = await drain(await ask(engine, tokenizer, [solid(RED)]))
    assert tokens[0] == answers["red"] and finish[0] in (Finish.STOP, Finish.LENGTH)
    tokens, _ = await drain(await ask(engine, tokenizer, [solid(BLUE, (40, 56))]))
    assert tokens[0] == answers["blue"]
    tokens, _ = await drain(await ask(engine, tokenizer, [solid(GREEN), solid(RED)]))
    assert tokens[0] == answers["two"]


async def test_requests_together_answer_as_alone(engine: EngineClient, tokenizer: ModelTokenizer, answers: dict[str, list[int]]) -> None:
    streams = {
        name: await ask(engine, tokenizer, images)
        for name, images in [("red", [solid(RED)]), ("text", []), ("two", [solid(GREEN), solid(RED)])]
    }
    results = await asyncio.gather(*(drain(stream) for stream in streams.values()))
    assert {name: tokens[0] for name, (tokens, _finish) in zip(streams, results, strict=True)} == {n: answers[n] for n in streams}


async def test_the_prompt_length_counts_image_tokens(engine: EngineClient, tokenizer: ModelTokenizer) -> None:
    """The engine's own count arrives with the request's end: text tokens plus each image's."""
    lengths = {}
    for images in (0, 1, 2):
        text, ids = chat(tokenizer, QUESTION, images)
        stream = engine.submit(ids, GREEDY, text, [solid(RED)] * images)
        assert stream.prompt_tokens == len(ids)  # the caller's count, until the engine's
        await drain(stream)
        lengths[images] = stream.prompt_tokens, len(ids)
    assert lengths[0][0] == lengths[0][1]  # text only: the same count
    per_image = lengths[1][0] - lengths[0][0] - (lengths[1][1] - lengths[0][1])  # image tokens beyond the tag's own
    assert per_image > 0
    assert lengths[2][0] - lengths[0][0] - (lengths[2][1] - lengths[0][1]) == 2 * per_image


async def test_text_only_with_text_or_token_ids(engine: EngineClient, tokenizer: ModelTokenizer, answers: dict[str, list[int]]) -> None:
    text, ids = chat(tokenizer, QUESTION)
    assert (await drain(engine.submit(ids, GREEDY, text)))[0][0] == answers["text"]
    # No text (a caller with token ids only): the worker decodes them, with the same answer.
    assert (await drain(engine.submit(ids, GREEDY)))[0][0] == answers["text"]


async def test_cancel_stops_a_vision_request(engine: EngineClient, tokenizer: ModelTokenizer, answers: dict[str, list[int]]) -> None:
    stream = await ask(engine, tokenizer, [solid(RED)], {"max_new_tokens": 400, "ignore_eos": True, "do_sample": False})
    async with asyncio.timeout(HANG_GUARD_S):
        first = await stream.next()
    assert first is not None and not first.finished
    stream.cancel()
    assert await stream.next() is None
    tokens, _ = await drain(await ask(engine, tokenizer, [solid(RED)]))  # the engine goes on
    assert tokens[0] == answers["red"]
    assert engine.active_requests == 0


async def test_what_a_vision_engine_refuses(engine: EngineClient, tokenizer: ModelTokenizer, answers: dict[str, list[int]]) -> None:
    with pytest.raises(InvalidRequestError, match="echo"):
        await ask(engine, tokenizer, [solid(RED)], {**GREEDY, "echo": True})
    with pytest.raises(InvalidRequestError, match="refused"):
        await drain(await ask(engine, tokenizer, [solid(RED)], {"max_new_tokens": 4, "min_new_tokens": 8}))
    with pytest.raises(ValueError, match="RGB uint8"):
        await ask(engine, tokenizer, [solid(RED).astype(np.float32)])  # type: ignore[arg-type]
    tokens, _ = await drain(await ask(engine, tokenizer, [solid(RED)]))
    assert tokens[0] == answers["red"]


async def test_batching_features_on_vision_requests(engine: EngineClient, tokenizer: ModelTokenizer) -> None:
    """What continuous batching adds (the stateful VLM refuses these before the engine, as LM does:
    calculators/openai/support.py): per-token logprobs, n > 1, a grammar."""
    if engine.info["pipeline"] != "VLM_CB":
        pytest.skip("continuous batching only")
    tokens, _ = await drain(stream := await ask(engine, tokenizer, [solid(RED)], {**GREEDY, "logprobs": 1}))
    assert stream.done and tokens[0]
    out_logprobs: list[float] = []
    stream = await ask(engine, tokenizer, [solid(RED)], {**GREEDY, "logprobs": 1})
    while (out := await stream.next()) is not None:
        out_logprobs += out.deltas[0].logprobs or [] if out.deltas else []
    assert len(out_logprobs) == len(tokens[0]) and all(p <= 0 for p in out_logprobs)
    sampled = {"max_new_tokens": 6, "do_sample": True, "temperature": 1.0, "rng_seed": 3, "num_return_sequences": 3, "ignore_eos": True}
    tokens, _ = await drain(await ask(engine, tokenizer, [solid(BLUE)], sampled))
    assert sorted(tokens) == [0, 1, 2] and all(len(t) == 6 for t in tokens.values())
    colour = {**GREEDY, GRAMMAR_KEY: [["ebnf", 'root ::= ("red" | "green" | "blue") "."']]}
    tokens, finish = await drain(await ask(engine, tokenizer, [solid(GREEN)], colour))
    assert tokenizer.decode(tokens[0]) in ("red.", "green.", "blue.")


async def test_kv_overflow_with_vision_requests(tiny_vlm_dir: Path, tokenizer: ModelTokenizer, cb_answers: dict[str, list[int]]) -> None:
    """A request that outgrows the whole KV cache (2 blocks of 32 tokens) ends with a 400; the
    image requests beside it answer as alone (added again with their images when genai dropped
    them before they started: the ones the first step had no room for), or, if they had
    started, end with a 503 to retry."""
    spec = WorkerSpec(models_path=str(tiny_vlm_dir), scheduler={**SCHEDULER, "num_kv_blocks": 2}, pipeline="VLM_CB")
    engine = await EngineClient.start(spec)
    try:
        assert engine.pid is not None
        with paused(engine.pid):  # all four reach the engine's first step together
            long = await ask(engine, tokenizer, [solid(BLUE)], {"max_new_tokens": 400, "ignore_eos": True, "do_sample": False})
            shorts = [await ask(engine, tokenizer, [solid(RED)]) for _ in range(3)]
        with pytest.raises(InvalidRequestError, match="KV cache"):
            await drain(long)
        for stream in shorts:
            try:
                tokens, _ = await drain(stream)
            except OverloadedError:  # it had started when the cache ran out
                continue
            assert tokens[0] == cb_answers["red"]
        tokens, _ = await drain(await ask(engine, tokenizer, [solid(RED)]))
        assert tokens[0] == cb_answers["red"]
    finally:
        await engine.aclose()


async def test_warm_up_on_a_vision_pipeline(tiny_vlm_dir: Path, tokenizer: ModelTokenizer, cb_answers: dict[str, list[int]]) -> None:
    """The warm-up at load takes text prompts and an image on a VLM_CB pipeline (its language
    model has no token-id input), and leaves it answering as before."""
    import openvino as ov
    import openvino_genai as ov_genai

    from calculators.llm.engine.warmup import warm_up

    scheduler = ov_genai.SchedulerConfig()
    scheduler.cache_size = 0
    pipe = ov_genai.ContinuousBatchingPipeline(str(tiny_vlm_dir), scheduler, "CPU", {})
    assert warm_up(pipe, ov_genai, assisted=False, vision=True) is not None
    config = ov_genai.GenerationConfig(**GREEDY)
    config.apply_chat_template = False
    handle = pipe.add_request(1, chat(tokenizer, QUESTION, 1)[0], [ov.Tensor(solid(RED)[None].copy())], config)
    while pipe.has_non_finished_requests():
        pipe.step()
    assert list(handle.read_all()[0].generated_ids) == cb_answers["red"]


async def test_a_text_engine_takes_no_images(tiny_model_dir: Path) -> None:
    engine = await EngineClient.start(WorkerSpec(models_path=str(tiny_model_dir), scheduler={"cache_size": 1}))
    try:
        assert not engine.vision and engine.info["pipeline"] == "LM_CB"
        with pytest.raises(InvalidRequestError, match="does not take images"):
            engine.submit([1, 2, 3], GREEDY, "x", [solid(RED)])
    finally:
        await engine.aclose()


async def test_a_worker_refuses_a_pipeline_type_that_does_not_fit(tiny_vlm_dir: Path) -> None:
    """A spec built by hand (the LLM resource resolves it first) gets the load error, not steps
    failing on token ids the vision pipeline cannot take."""
    with pytest.raises(UnavailableError, match=r"pipeline_type LM_CB does not fit"):
        await EngineClient.start(WorkerSpec(models_path=str(tiny_vlm_dir), scheduler=SCHEDULER, pipeline="LM_CB"))

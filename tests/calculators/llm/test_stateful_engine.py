"""EngineClient against the real LM (stateful LLMPipeline) worker on the tiny model: same protocol
as the continuous-batching worker, one request at a time, in the order they came."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from calculators.llm.engine.base import WorkerSpec
from calculators.llm.engine.client import EngineClient, StepOutput
from calculators.llm.engine.protocol import Finish
from calculators.llm.model_files import ModelTokenizer
from graphs.errors import InvalidRequestError
from tests.helpers.engine import GREEDY, HANG_GUARD_S, chat_ids, drain
from tests.models import TINY_PROMPTS

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> ModelTokenizer:
    return ModelTokenizer.load(tiny_model_dir)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def engine(tiny_model_dir: Path) -> AsyncIterator[EngineClient]:
    client = await EngineClient.start(WorkerSpec(models_path=str(tiny_model_dir), pipeline="LM"))
    yield client
    await client.aclose()


async def test_answers_and_finish_reasons(engine: EngineClient, tokenizer: ModelTokenizer) -> None:
    assert engine.info["pipeline"] == "LM"
    prompt = "Say this is a test"
    tokens, finish = await drain(engine.submit(chat_ids(tokenizer, prompt), GREEDY))
    assert tokenizer.decode(tokens[0], skip_special_tokens=True) == TINY_PROMPTS[prompt]
    assert finish == {0: Finish.STOP}
    tokens, finish = await drain(engine.submit(chat_ids(tokenizer, prompt), {"max_new_tokens": 2, "do_sample": False}))
    assert len(tokens[0]) == 2 and finish == {0: Finish.LENGTH}


async def test_requests_run_one_at_a_time_in_order(engine: EngineClient, tokenizer: ModelTokenizer) -> None:
    prompts = list(TINY_PROMPTS)
    events: list[tuple[int, bool]] = []
    ends = []
    for index, prompt in enumerate(prompts):
        stream = engine.submit(chat_ids(tokenizer, prompt), GREEDY)

        def record(out: StepOutput, index: int = index) -> None:
            events.append((index, out.finished))

        ends.append(stream.listen(record))
    async with asyncio.timeout(HANG_GUARD_S):
        await asyncio.gather(*ends)
    order = [index for index, _finished in events]
    assert order == sorted(order)  # each request's tokens all come before the next one's
    assert [index for index, finished in events if finished] == list(range(len(prompts)))


async def test_bad_config_is_refused_alone(engine: EngineClient, tokenizer: ModelTokenizer) -> None:
    with pytest.raises(InvalidRequestError, match="refused"):
        await drain(engine.submit(chat_ids(tokenizer, "Say this is a test"), {"max_new_tokens": 10, "min_new_tokens": 20}))
    tokens, _ = await drain(engine.submit(chat_ids(tokenizer, "Count to five."), GREEDY))
    assert tokenizer.decode(tokens[0], skip_special_tokens=True) == TINY_PROMPTS["Count to five."]

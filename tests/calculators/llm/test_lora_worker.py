"""LoRA turns in the real engine worker (tiny model, its tiny adapters; no mocks): requests
waiting for their adapter's turn still run after a failed step emptied the batch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from calculators.llm.engine.base import WorkerSpec
from calculators.llm.engine.client import EngineClient
from calculators.llm.engine.protocol import Finish
from calculators.llm.lora import ADAPTER_FILE, ADAPTER_KEY
from calculators.llm.model_files import ModelTokenizer
from graphs.errors import EngineError
from tests.helpers.engine import GREEDY, chat_ids, drain
from tests.models import TINY_LORA_ANSWERS, build_tiny_lora_adapters

pytestmark = pytest.mark.asyncio(loop_scope="module")

# A schema the grammar compiler refuses: the server refuses it up front (a 400), so only a request
# sent to the worker directly makes a step fail, as an engine fault would.
REFUSED_BY_THE_COMPILER = [["json", '{"type": "strin"}']]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def engine(tiny_model_dir: Path) -> AsyncIterator[EngineClient]:
    adapters = build_tiny_lora_adapters()
    spec = WorkerSpec(
        models_path=str(tiny_model_dir),
        scheduler={"cache_size": 1, "max_num_batched_tokens": 256},
        adapters=[{"name": name, "path": str(adapters / name / ADAPTER_FILE), "alpha": 1.0} for name in TINY_LORA_ANSWERS],
    )
    client = await EngineClient.start(spec)
    yield client
    await client.aclose()


async def test_waiting_requests_run_after_a_failed_step(engine: EngineClient, tiny_model_dir: Path) -> None:
    tokenizer = ModelTokenizer.load(tiny_model_dir)
    prompt = "Say this is a test"
    ids = chat_ids(tokenizer, prompt)
    # Announced together, so the worker takes both before its first step: the "swap" request
    # runs (and its step fails), the "count" request waits for its adapter's turn.
    engine.expect()
    engine.expect()
    failing = engine.submit(ids, {**GREEDY, ADAPTER_KEY: "swap", "grammar": REFUSED_BY_THE_COMPILER})
    waiting = engine.submit(ids, {**GREEDY, ADAPTER_KEY: "count"})
    with pytest.raises(EngineError):
        await drain(failing)
    tokens, finish = await drain(waiting)  # before the fix: no turn after the failed step, a hang
    assert tokenizer.decode(tokens[0], skip_special_tokens=True) == TINY_LORA_ANSWERS["count"][prompt]
    assert finish[0] == Finish.STOP

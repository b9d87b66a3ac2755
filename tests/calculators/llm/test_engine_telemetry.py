"""The engine worker's metrics figures (ToWorker.TELEMETRY), on the real worker and tiny model."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from calculators.llm.engine.client import EngineClient
from calculators.llm.model_files import ModelTokenizer
from tests.helpers.engine import GREEDY, chat_ids, drain, spec
from tests.models import TINY_PROMPTS

pytestmark = pytest.mark.asyncio(loop_scope="function")


async def test_figures_only_once_observed(tiny_model_dir: Path) -> None:
    tokenizer = ModelTokenizer.load(tiny_model_dir)
    prompts = list(TINY_PROMPTS)[:3]
    engine = await EngineClient.start(spec(tiny_model_dir))
    try:
        _, _ = await drain(engine.submit(chat_ids(tokenizer, prompts[0]), GREEDY))
        assert not {"scheduled", "kv_usage", "kv_bytes", "steps", "queue_s"} & set(engine.last_stats)  # off by default

        steps: list[float] = []
        queues: list[float] = []

        def observer(step_seconds: Sequence[float], queue_seconds: Sequence[float]) -> None:
            steps.extend(step_seconds)
            queues.extend(queue_seconds)

        engine.observe(observer)
        streams = [engine.submit(chat_ids(tokenizer, p), GREEDY) for p in prompts]
        results = await asyncio.gather(*(drain(s) for s in streams))
        longest = max(len(tokens[0]) for tokens, _ in results)
        assert len(queues) == len(prompts) and all(q >= 0 for q in queues)  # one per request
        assert len(steps) >= longest and all(s > 0 for s in steps)  # one per step
        stats = engine.last_stats
        assert stats["scheduled"] == 0 and stats["running"] == 0  # the last message: all done
        assert stats["kv_usage"] == 0.0 and stats["kv_bytes"] > 0
        assert "steps" not in stats and "queue_s" not in stats  # handed to the observer, not kept
        assert engine.received_at > 0
    finally:
        await engine.aclose()

"""In-process engine client helpers on the tiny model: the worker spec, greedy settings, chat ids, draining a stream."""

from __future__ import annotations

import asyncio
from pathlib import Path

from calculators.llm.engine.base import WorkerSpec
from calculators.llm.engine.client import RequestStream
from calculators.llm.engine.protocol import Finish
from calculators.llm.model_files import ModelTokenizer

HANG_GUARD_S = 60


GREEDY = {"max_new_tokens": 200, "do_sample": False}


def spec(model_dir: Path) -> WorkerSpec:
    # A small KV cache: the tiny model needs little, and the tests start two workers.
    return WorkerSpec(models_path=str(model_dir), scheduler={"cache_size": 1, "max_num_batched_tokens": 256})


def chat_ids(tokenizer: ModelTokenizer, prompt: str) -> list[int]:
    text = tokenizer.render_chat([{"role": "user", "content": prompt}], add_generation_prompt=True)
    return tokenizer.encode(text, add_special_tokens=False)


async def drain(stream: RequestStream) -> tuple[dict[int, list[int]], dict[int, Finish]]:
    """Every token and the finish reason of each sequence, until the stream ends."""
    tokens: dict[int, list[int]] = {}
    finish: dict[int, Finish] = {}
    async with asyncio.timeout(HANG_GUARD_S):
        while (out := await stream.next()) is not None:
            for delta in out.deltas:
                tokens.setdefault(delta.index, []).extend(delta.token_ids)
                if delta.finish != Finish.NONE:
                    finish[delta.index] = delta.finish
    return tokens, finish

"""Prompt log-likelihoods (completions' `echo` with `logprobs`) on a prefix-caching servable.

With prefix caching genai skips the cached part of a prompt, so it has no logits for those
tokens. Echo requests of such a servable go to a second engine worker made from the same spec
with prefix caching off, started on the first such request (a servable that never scores pays
nothing) and again after it died.

Why a second engine and not a forward pass of `openvino_model.xml` outside the batch (measured
on SmolLM2-135M Q4_1, 19-token prompt): on CPU the continuous-batching engine's prompt
log-probabilities go through its KV cache, u8 by default, and differ from a stateful forward
pass by up to 0.15 (2e-4 with an f16 KV cache). Only the same engine gives the values a
non-caching servable gives, and it generates the `max_tokens` after the prompt too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from calculators.llm.engine.base import WorkerSpec
from calculators.llm.engine.client import EngineClient

log = logging.getLogger("ovserve.llm")


def scoring_spec(spec: WorkerSpec) -> WorkerSpec:
    """The main engine's spec without prefix caching, its KV cache grown on demand (cache_size 0)
    rather than preallocated a second time."""
    scheduler = {**spec.scheduler, "enable_prefix_caching": False, "cache_size": 0, "num_kv_blocks": 0}
    return dataclasses.replace(spec, scheduler=scheduler)


def needs_scorer(spec: WorkerSpec) -> bool:
    """Whether echo with logprobs must leave the main engine: it caches prefixes (LoRA servables
    turn prefix caching off in the worker, so their engine scores prompts itself)."""
    return bool(spec.scheduler.get("enable_prefix_caching")) and not spec.adapters


class PromptScorer:
    """The lazily started non-caching engine of one servable."""

    def __init__(self, spec: WorkerSpec, servable_name: str) -> None:
        self._spec = scoring_spec(spec)
        self._name = servable_name
        self._engine: EngineClient | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def started(self) -> bool:
        return self._engine is not None and self._engine.alive

    async def engine(self) -> EngineClient:
        """The scoring engine, started if it is not running (UnavailableError if it cannot load)."""
        async with self._lock:
            engine = self._engine
            if engine is None or not engine.alive:
                if engine is not None:
                    await engine.aclose()  # died: reap it before starting another
                log.info("servable %s: starting the prompt-scoring engine (echo with logprobs, no prefix caching)", self._name)
                self._engine = engine = await EngineClient.start(self._spec, self._name)
                if self._closed:  # closed while it started
                    await engine.aclose()
            return engine

    async def aclose(self) -> None:
        self._closed = True
        async with self._lock:
            if self._engine is not None:
                await self._engine.aclose()

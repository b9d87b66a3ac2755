"""Prefix caching check: TTFT of a multi-turn chat's second turn against its first.

The first turn sends a long (~1,000-token) user message; the second sends the same history
plus the assistant's answer and a short follow-up. With prefix caching the engine reuses the
first turn's KV cache, so the second turn's time to first token should be a small fraction of
the first's. Each round uses fresh random text, so rounds do not help each other.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import msgspec

_WORDS = (
    "river stone light north garden paper window silver market quiet morning engine harbor "
    "forest number yellow music winter bridge letter cloud simple orange travel summer"
).split()


def random_text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words))


def text_of_tokens(rng: random.Random, tokens: int, count: Callable[[str], int] | None) -> str:
    """Random words making about `tokens` tokens by `count` (else ~4 tokens a word, a guess)."""
    if count is None:
        return random_text(rng, max(1, tokens // 4))
    words = [rng.choice(_WORDS) for _ in range(max(1, tokens // 8))]
    while count(" ".join(words)) < tokens:
        words.append(rng.choice(_WORDS))
    return " ".join(words)


async def _turn(
    session: aiohttp.ClientSession, url: str, model: str, messages: list[dict[str, str]], max_tokens: int
) -> tuple[float, str, int]:
    """(seconds to the first content chunk, the answer, prompt tokens) of one streamed chat turn."""
    body = {
        "model": model,
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": 0,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    ttft: float | None = None
    parts: list[str] = []
    prompt_tokens = 0
    async with session.post(url, json=body) as response:
        if response.status != 200:
            raise RuntimeError(f"turn failed with {response.status}: {await response.text()}")
        buffer = b""
        async for data in response.content.iter_any():
            buffer += data
            *events, buffer = buffer.split(b"\n\n")
            for event in events:
                if not event.startswith(b"data: {"):
                    continue
                chunk: dict[str, Any] = msgspec.json.decode(event[6:])
                for choice in chunk.get("choices") or []:
                    content = choice.get("delta", {}).get("content")
                    if content:
                        if ttft is None:
                            ttft = time.perf_counter() - started
                        parts.append(content)
                if chunk.get("usage"):
                    prompt_tokens = chunk["usage"]["prompt_tokens"]
    if ttft is None:
        raise RuntimeError("the turn produced no content")
    return ttft, "".join(parts), prompt_tokens


async def prefix_cache_check(
    base_url: str,
    model: str,
    *,
    first_tokens: int = 1000,
    count_tokens: Callable[[str], int] | None = None,
    rounds: int = 3,
    max_tokens: int = 16,
    seed: int = 0,
) -> dict[str, Any]:
    """Median TTFT of first and second turns over `rounds` fresh conversations, and their ratio."""
    rng = random.Random(seed)
    url = base_url.rstrip("/") + "/v3/chat/completions"
    first: list[float] = []
    second: list[float] = []
    tokens: list[tuple[int, int]] = []
    async with aiohttp.ClientSession() as session:
        await _turn(session, url, model, [{"role": "user", "content": random_text(rng, 50)}], 4)  # warm-up
        for _ in range(rounds):
            history = [{"role": "user", "content": text_of_tokens(rng, first_tokens, count_tokens)}]
            ttft1, answer, prompt1 = await _turn(session, url, model, history, max_tokens)
            history += [{"role": "assistant", "content": answer}, {"role": "user", "content": "Please go on."}]
            ttft2, _, prompt2 = await _turn(session, url, model, history, max_tokens)
            first.append(ttft1)
            second.append(ttft2)
            tokens.append((prompt1, prompt2))
    ttft_first = statistics.median(first)
    ttft_second = statistics.median(second)
    return {
        "rounds": rounds,
        "prompt_tokens": tokens,
        "ttft_first_ms": round(ttft_first * 1000, 2),
        "ttft_second_ms": round(ttft_second * 1000, 2),
        "prefix_ttft_ratio": round(ttft_second / ttft_first, 3),
    }


def run_prefix_cache_check(base_url: str, model: str, **kwargs: Any) -> dict[str, Any]:
    from serving import event_loop

    return event_loop.run(prefix_cache_check(base_url, model, **kwargs))

"""The benchmark workload: prompts of an exact token length and an arrival schedule.

A prompt's length is counted the way the server counts it (calculators/tokenizer_calculator.py):
completions encode the text with special tokens; chat renders the user message through the chat
template and encodes that without special tokens. The token ids kept with each prompt are exactly
the ids the server hands the engine, so the in-process run feeds the engine the same input.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from calculators.llm.model_files import ModelTokenizer

#: Rounds of decode/re-encode/adjust before settling for the closest length found.
_ADJUST_ROUNDS = 64


@dataclass(frozen=True, slots=True)
class BenchPrompt:
    text: str  # what the client sends (the user message, or the completion prompt)
    token_ids: tuple[int, ...]  # what the server feeds the engine for it


@dataclass(frozen=True, slots=True)
class Workload:
    prompts: tuple[BenchPrompt, ...]
    arrivals: tuple[float, ...]  # seconds after the start of the run, non-decreasing
    output_len: int
    chat: bool

    @property
    def mean_prompt_tokens(self) -> float:
        return sum(len(p.token_ids) for p in self.prompts) / max(1, len(self.prompts))


def is_chat_endpoint(endpoint: str) -> bool:
    return endpoint.rstrip("/").endswith("chat/completions")


def load_tokenizer(model_dir: Path) -> ModelTokenizer:
    return ModelTokenizer.load(model_dir)


def server_token_counter(tokenizer: ModelTokenizer, chat: bool) -> Callable[[str], list[int]]:
    """text -> the prompt token ids the server will see for it."""
    if chat:
        return lambda text: tokenizer.encode(tokenizer.render_chat([{"role": "user", "content": text}]), add_special_tokens=False)
    return lambda text: tokenizer.encode(text, add_special_tokens=True)


def candidate_token_ids(tokenizer: ModelTokenizer, rng: random.Random) -> list[int]:
    """Non-special token ids that decode on their own to printable text (so text re-encodes
    predictably): read from the token-bytes table when the model has one."""
    table = tokenizer.token_bytes
    if table is not None:
        ids = []
        for token_id, raw in enumerate(table.table):
            if token_id in table.special_ids or not raw:
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                continue
            if text.isprintable():
                ids.append(token_id)
        if ids:
            return ids
    vocab_size = len(tokenizer.ov_tokenizer.get_vocab())
    sample = rng.sample(range(vocab_size), min(vocab_size, 5000))
    ids = []
    for token_id in sample:
        text = tokenizer.decode([token_id], skip_special_tokens=True)
        if text and "\ufffd" not in text and text.isprintable():
            ids.append(token_id)
    if not ids:
        raise ValueError("found no plain-text tokens in this tokenizer to build prompts from")
    return ids


def build_prompt(
    tokenizer: ModelTokenizer, count: Callable[[str], list[int]], input_len: int, pool: list[int], rng: random.Random
) -> BenchPrompt:
    """Random text whose server-side token count is `input_len` (closest found if not exact)."""
    overhead = len(count(""))
    if input_len <= overhead:
        raise ValueError(f"--input-len {input_len} leaves no room: the prompt framing alone is {overhead} tokens")
    ids = [rng.choice(pool) for _ in range(input_len - overhead)]
    best: BenchPrompt | None = None
    for _ in range(_ADJUST_ROUNDS):
        text = tokenizer.decode(ids)
        server_ids = count(text)
        diff = input_len - len(server_ids)
        if best is None or abs(diff) < abs(input_len - len(best.token_ids)):
            best = BenchPrompt(text, tuple(server_ids))
        if diff == 0:
            break
        if diff > 0:
            ids.extend(rng.choice(pool) for _ in range(diff))
        else:
            ids = ids[: max(1, len(ids) + diff)]
    assert best is not None
    return best


def arrival_times(num: int, request_rate: float, rng: random.Random, burstiness: float = 1.0) -> tuple[float, ...]:
    """All at 0 for an infinite rate; otherwise a Poisson process (exponential gaps), or with
    `burstiness` != 1 gamma gaps of the same mean (vLLM's --burstiness: below 1 burstier, above
    1 more even)."""
    if request_rate == float("inf"):
        return (0.0,) * num
    t = 0.0
    times = []
    for _ in range(num):
        if burstiness == 1.0:
            t += rng.expovariate(request_rate)
        else:
            t += rng.gammavariate(burstiness, 1.0 / (request_rate * burstiness))
        times.append(t)
    return tuple(times)


def build_workload(
    tokenizer: ModelTokenizer,
    *,
    num_prompts: int,
    input_len: int,
    output_len: int,
    chat: bool,
    request_rate: float = float("inf"),
    seed: int = 0,
    burstiness: float = 1.0,
) -> Workload:
    rng = random.Random(seed)
    count = server_token_counter(tokenizer, chat)
    pool = candidate_token_ids(tokenizer, rng)
    prompts = tuple(build_prompt(tokenizer, count, input_len, pool, rng) for _ in range(num_prompts))
    arrivals = arrival_times(num_prompts, request_rate, random.Random(seed + 1), burstiness)
    return Workload(prompts, arrivals, output_len, chat)


def fixed_workload(
    tokenizer: ModelTokenizer,
    texts: list[str],
    *,
    num_prompts: int,
    output_len: int,
    chat: bool,
    request_rate: float = float("inf"),
    seed: int = 0,
    burstiness: float = 1.0,
) -> Workload:
    """The given prompts in turn (e.g. the tiny model's trained ones, answered to the end):
    for runs where what the model writes matters, such as speculative decoding."""
    count = server_token_counter(tokenizer, chat)
    pool = [BenchPrompt(text, tuple(count(text))) for text in texts]
    prompts = tuple(pool[i % len(pool)] for i in range(num_prompts))
    arrivals = arrival_times(num_prompts, request_rate, random.Random(seed + 1), burstiness)
    return Workload(prompts, arrivals, output_len, chat)

"""Seeded, deterministic full-batch training on the tiny model's examples (the tiny model, its
draft and its LoRA adapters), and the logit margin that says greedy decoding will hold."""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable
from typing import Any

from tests.models.answers import FILLER, TINY_COMPLETIONS, all_chat_cases
from tests.models.chat import ADDED_TOKENS, IM_END, SPECIAL_TOKENS
from tests.models.common import deterministic_torch

logger = logging.getLogger("tests.models.training")

#: Smallest accepted gap between the expected token's logit and the next best, on every answer
#: token after training (see :func:`min_margin`).
MIN_MARGIN = 2.0


def tiny_examples(hf_tok: Any) -> list[tuple[list[int], int]]:
    """(token ids, index where the loss starts) for every chat case and raw completion.

    Chat prompts are rendered with the server's own jinja environment; prompt and answer are
    tokenized separately and concatenated, exactly as at inference (the prompt is encoded
    alone, then generated tokens follow it).
    """
    eos = hf_tok.convert_tokens_to_ids(IM_END)
    examples = []
    for _label, prompt, answer in all_chat_cases():
        p = hf_tok.encode(prompt, add_special_tokens=False)
        a = hf_tok.encode(answer, add_special_tokens=False)
        examples.append((p + a + [eos], len(p)))
    for prompt, continuation in TINY_COMPLETIONS.items():
        p = hf_tok.encode(prompt, add_special_tokens=False)
        a = hf_tok.encode(continuation, add_special_tokens=False)
        examples.append((p + a + [eos], len(p)))
    return examples


def without_added_tokens(text: str) -> list[str]:
    """The plain pieces of a text between special and added tokens (these are never merged)."""
    pattern = "|".join(re.escape(t) for t in [*SPECIAL_TOKENS, *ADDED_TOKENS])
    return [piece for piece in re.split(pattern, text) if piece]


def tiny_corpus() -> list[str]:
    """Tokenizer training text (special and added tokens are vocabulary entries, not learned)."""
    corpus = ["user\n", "assistant\n", "system\n"]
    for _label, prompt, answer in all_chat_cases():
        corpus += without_added_tokens(prompt) + without_added_tokens(answer)
    corpus += [p + c for p, c in TINY_COMPLETIONS.items()]
    return corpus + FILLER


def length_buckets(examples: list[tuple[list[int], int]]) -> list[list[tuple[list[int], int]]]:
    """Examples grouped by length (a bucket ends where lengths pass twice its shortest), so
    short chats are not padded to the length of the long tool prompts."""
    buckets: list[list[tuple[list[int], int]]] = []
    for example in sorted(examples, key=lambda e: len(e[0])):
        if buckets and len(example[0]) <= 2 * len(buckets[-1][0][0]):
            buckets[-1].append(example)
        else:
            buckets.append([example])
    return buckets


def train_full_batch(model: Any, examples: list[tuple[list[int], int]], spec: dict[str, Any]) -> float:
    """Full-batch AdamW: each step sums the loss of every answer token of every example (one
    padded batch per length bucket) and averages it over all of them."""
    import torch

    batches = []
    total = sum(len(ids) - start for ids, start in examples)
    for bucket in length_buckets(examples):
        width = max(len(ids) for ids, _ in bucket)
        input_ids = torch.zeros((len(bucket), width), dtype=torch.long)
        labels = torch.full((len(bucket), width), -100, dtype=torch.long)
        mask = torch.zeros((len(bucket), width), dtype=torch.long)
        for row, (ids, start) in enumerate(bucket):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            labels[row, start : len(ids)] = torch.tensor(ids[start:])
            mask[row, : len(ids)] = 1
        share = sum(len(ids) - start for ids, start in bucket) / total
        batches.append((input_ids, mask, labels, share))
    opt = torch.optim.AdamW(model.parameters(), lr=spec["lr"], weight_decay=spec["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / spec["warmup"]))
    model.train()
    loss_value = float("nan")
    for step in range(spec["steps"]):
        opt.zero_grad(set_to_none=True)
        loss_value = 0.0
        for input_ids, mask, labels, share in batches:
            out = model(input_ids=input_ids, attention_mask=mask, labels=labels)
            loss = out.loss * share  # the bucket's mean -> its part of the mean over all tokens
            loss.backward()
            loss_value += float(loss.detach())
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == spec["steps"] - 1:
            logger.info("tiny model: step %d loss %.5f", step, loss_value)
    model.eval()
    return loss_value


def min_margin(model: Any, examples: list[tuple[list[int], int]]) -> tuple[float, int]:
    """The smallest gap, over every answer token of every example, between the logit of the
    expected token and the best other logit (negative: greedy decoding would go wrong), and
    the index of the example where it occurs.

    OpenVINO runs bf16 on CPUs that have it: a comfortable gap keeps answers the same there.
    """
    import torch

    worst, where = float("inf"), -1
    with torch.no_grad():
        for index, (ids, start) in enumerate(examples):
            logits = model(input_ids=torch.tensor([ids])).logits[0, start - 1 : len(ids) - 1].float()
            target = torch.tensor(ids[start:])
            expected = logits.gather(1, target[:, None])[:, 0]
            logits[torch.arange(len(target)), target] = float("-inf")
            margin = float((expected - logits.max(dim=1).values).min())
            if margin < worst:
                worst, where = margin, index
    return worst, where


def train_on_tiny_examples(make_model: Callable[[], Any], hf_tok: Any, training: dict[str, Any]) -> tuple[Any, Any, float]:
    """Seed, make the model (its initial weights come from the seed) and train it,
    deterministically, on the tiny model's examples; (model, examples, loss)."""
    import torch

    random.seed(training["seed"])
    torch.manual_seed(training["seed"])
    with deterministic_torch():
        model = make_model()
        examples = tiny_examples(hf_tok)
        loss = train_full_batch(model, examples, training)
    return model, examples, loss

"""Training the tiny VLM: prompts tokenized exactly as openvino-genai tokenizes them, pixel values
from the model's own image processor, seeded full-batch training, and the logit margin check.

openvino-genai replaces each ``<image>`` of the rendered prompt by the image's embeddings, one
``<image>`` token per patch, *followed by a newline*, then tokenizes the whole text
(:func:`expand_image_tags`); training uses the same ids, so served prompts are the trained ones.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from functools import cache
from typing import Any

from tests.models.vlm_data import ENDOFTEXT, IM_END, IM_START, IMAGE_TOKEN, VLM_CHAT_TEMPLATE, VLM_SPECIAL_TOKENS, VlmCase

logger = logging.getLogger("tests.models.vlm")


@cache
def _template() -> Any:
    from calculators.llm.model_files import _template_env

    return _template_env().from_string(VLM_CHAT_TEMPLATE)


def render_vlm_prompt(messages: list[dict[str, Any]], add_generation_prompt: bool = True) -> str:
    """:data:`VLM_CHAT_TEMPLATE` rendered as the server renders templates (its jinja environment)."""
    return _template().render(messages=messages, add_generation_prompt=add_generation_prompt, bos_token=ENDOFTEXT, eos_token=IM_END)


def expand_image_tags(prompt: str, tokens_per_image: int) -> str:
    """The text openvino-genai tokenizes for a LLaVA prompt: each tag becomes one tag per image
    token, then a newline."""
    return prompt.replace(IMAGE_TOKEN, IMAGE_TOKEN * tokens_per_image + "\n")


def train_vlm_tokenizer(corpus: list[str], spec: dict[str, Any]) -> Any:
    """A byte-level BPE tokenizer (``tokenizers``) holding the special tokens, ``<image>`` included,
    wrapped as transformers' PreTrainedTokenizerFast with the VLM chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec["vocab_size"],
        min_frequency=spec["min_frequency"],
        special_tokens=list(VLM_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        additional_special_tokens=[IM_START, IMAGE_TOKEN],
        model_max_length=2048,
        clean_up_tokenization_spaces=False,
    )
    hf_tok.chat_template = VLM_CHAT_TEMPLATE
    return hf_tok


def tokenizer_corpus(cases: list[VlmCase]) -> list[str]:
    """Every prompt and answer with the special tokens cut out (they are vocabulary entries)."""
    import re

    pattern = "|".join(re.escape(t) for t in VLM_SPECIAL_TOKENS)
    corpus = []
    for case in cases:
        for text in (expand_image_tags(render_vlm_prompt(case.messages), 1), case.answer):
            corpus += [piece for piece in re.split(pattern, text) if piece]
    return corpus


@dataclass
class Example:
    ids: list[int]
    start: int  # first answer token
    pixel_values: Any  # torch tensor (images, 3, H, W), or None without images


def encode_cases(cases: list[VlmCase], hf_tok: Any, processor: Any, tokens_per_image: int) -> list[Example]:
    """Prompt ids (rendered, tags expanded, encoded alone as at inference) + answer ids + eos, and
    the processor's pixel values of the case's images."""
    eos = hf_tok.convert_tokens_to_ids(IM_END)
    examples = []
    for case in cases:
        prompt = expand_image_tags(render_vlm_prompt(case.messages), tokens_per_image)
        p = hf_tok.encode(prompt, add_special_tokens=False)
        a = hf_tok.encode(case.answer, add_special_tokens=False)
        pixels = processor(images=case.images, return_tensors="pt")["pixel_values"] if case.images else None
        examples.append(Example(p + a + [eos], len(p), pixels))
    return examples


def _batch(examples: list[Example], pad_id: int) -> dict[str, Any]:
    import torch

    width = max(len(e.ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        input_ids[row, : len(e.ids)] = torch.tensor(e.ids)
        labels[row, e.start : len(e.ids)] = torch.tensor(e.ids[e.start :])
        mask[row, : len(e.ids)] = 1
    pixels = [e.pixel_values for e in examples if e.pixel_values is not None]
    batch = {"input_ids": input_ids, "attention_mask": mask, "labels": labels}
    if pixels:
        batch["pixel_values"] = torch.cat(pixels)
    return batch


def train_vlm(model: Any, examples: list[Example], spec: dict[str, Any], pad_id: int) -> float:
    """Seeded full-batch AdamW on every answer token (one padded batch: the examples are short)."""
    import torch

    from tests.models.common import deterministic_torch

    random.seed(spec["seed"])
    torch.manual_seed(spec["seed"])
    opt = torch.optim.AdamW(model.parameters(), lr=spec["lr"], weight_decay=spec["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / spec["warmup"]))
    batch = _batch(examples, pad_id)
    model.train()
    loss_value = float("nan")
    with deterministic_torch():
        for step in range(spec["steps"]):
            opt.zero_grad(set_to_none=True)
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            loss_value = float(loss.detach())
            if step % 50 == 0 or step == spec["steps"] - 1:
                logger.info("tiny VLM: step %d loss %.5f", step, loss_value)
    model.eval()
    return loss_value


def min_margin(model: Any, examples: list[Example]) -> tuple[float, int]:
    """The smallest gap, over every answer token of every example, between the expected token's
    logit and the best other one (negative: greedy decoding goes wrong), and where it occurs."""
    import torch

    from tests.models.common import deterministic_torch

    worst, where = float("inf"), -1
    with torch.no_grad(), deterministic_torch():
        for index, e in enumerate(examples):
            inputs = {"input_ids": torch.tensor([e.ids])}
            if e.pixel_values is not None:
                inputs["pixel_values"] = e.pixel_values
            logits = model(**inputs).logits[0, e.start - 1 : len(e.ids) - 1].float()
            target = torch.tensor(e.ids[e.start :])
            expected = logits.gather(1, target[:, None])[:, 0]
            logits[torch.arange(len(target)), target] = float("-inf")
            margin = float((expected - logits.max(dim=1).values).min())
            if margin < worst:
                worst, where = margin, index
    return worst, where

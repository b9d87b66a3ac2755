"""The tiny chat model: trained for a few hundred steps on :mod:`tests.models.answers`, so that
greedy decoding reproduces :data:`TINY_PROMPTS` (through the chat template), :data:`TINY_COMPLETIONS`
(raw text) and the conversations of :data:`TINY_CHAT_CASES` exactly. Training prompts are rendered
with the server's own jinja environment, so serving-time prompts are token for token the trained ones.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from tests.models.answers import FILLER, TINY_CHAT_CASES, TINY_COMPLETIONS, TINY_PROMPTS, all_chat_cases
from tests.models.chat import (
    ADDED_TOKENS,
    CHAT_TEMPLATE,
    IM_END,
    SPECIAL_TOKENS,
    export_lm,
    qwen2_config,
    render_chat_prompt,
    save_hf,
    train_tokenizer,
)
from tests.models.common import (
    RECIPE_VERSION,
    cached_build,
    default_cache_root,
    deterministic_torch,
    greedy_generate_rendered,
    package_versions,
    quiet_build,
)
from tests.models.training import MIN_MARGIN, min_margin, tiny_corpus, train_on_tiny_examples

logger = logging.getLogger("tests.models.tiny")


def tiny_recipe() -> dict[str, Any]:
    """Everything that decides what :func:`build_tiny_model` produces."""
    return {
        "recipe_version": RECIPE_VERSION,
        "kind": "tiny",
        "model": {
            "hidden_size": 128,
            "intermediate_size": 384,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 512,
            "rope_theta": 10000.0,
            "tie_word_embeddings": True,
        },
        "tokenizer": {"vocab_size": 512, "min_frequency": 2, "special_tokens": SPECIAL_TOKENS, "added_tokens": ADDED_TOKENS},
        "training": {"seed": 1234, "steps": 300, "lr": 3e-3, "weight_decay": 0.0, "warmup": 20, "min_margin": MIN_MARGIN},
        "chat_template": CHAT_TEMPLATE,
        "prompts": TINY_PROMPTS,
        "completions": TINY_COMPLETIONS,
        "chat_cases": TINY_CHAT_CASES,
        "filler": FILLER,
        "weight_format": "fp32",
        "versions": package_versions(),
    }


def build_tiny_model(cache_root: Path | None = None) -> Path:
    """The tiny trained chat model; greedy decoding reproduces TINY_PROMPTS / TINY_COMPLETIONS."""
    recipe = tiny_recipe()
    return cached_build(cache_root or default_cache_root(), "tiny", recipe, lambda out: _build_tiny(out, recipe))


def _build_tiny(out: Path, recipe: dict[str, Any]) -> None:
    with quiet_build():
        from transformers import Qwen2ForCausalLM

        t0 = time.monotonic()
        hf_tok = train_tokenizer(tiny_corpus(), recipe["tokenizer"])
        config = qwen2_config(recipe["model"], hf_tok)
        model, examples, loss = train_on_tiny_examples(lambda: Qwen2ForCausalLM(config), hf_tok, recipe["training"])
        with deterministic_torch():
            margin, where = min_margin(model, examples)
        t1 = time.monotonic()
        logger.info("tiny model: trained in %.1f s, final loss %.6f, smallest logit margin %.2f", t1 - t0, loss, margin)
        if margin < recipe["training"]["min_margin"]:
            raise RuntimeError(
                f"tiny model: logit margin {margin:.2f} < {recipe['training']['min_margin']} on example {where}: "
                "train longer or give the model more capacity"
            )
        hf_dir = out / "hf"
        save_hf(model, hf_tok, hf_dir)
        export_lm(hf_dir, out)
        t2 = time.monotonic()
        logger.info("tiny model: exported in %.1f s", t2 - t1)
        verify_tiny_model(out)
        logger.info("tiny model: verified in %.1f s", time.monotonic() - t2)


def greedy_generate(model_dir: Path, prompts: list[str], max_new_tokens: int = 160, chat: bool = True) -> list[tuple[str, list[int]]]:
    """Greedy (text, generated ids) for each prompt with openvino-genai continuous batching.

    With ``chat`` the prompt is the user message, rendered through the model's chat template
    (as the server renders it) with the generation prompt; otherwise it is raw text.
    """
    if chat:
        prompts = [render_chat_prompt([{"role": "user", "content": p}]) for p in prompts]
    return greedy_generate_rendered(model_dir, prompts, max_new_tokens)


def verify_tiny_model(model_dir: Path) -> None:
    """Raise RuntimeError unless the exported model reproduces every expected answer, greedily,
    through the chat template as the server renders it (tools and template kwargs included),
    both at the CPU's default inference precision (bf16 where available) and in f32."""
    import openvino_genai
    from transformers import AutoTokenizer

    model_dir = Path(model_dir)
    hf_tok = AutoTokenizer.from_pretrained(model_dir)
    ov_tok = openvino_genai.Tokenizer(str(model_dir))
    eos = hf_tok.convert_tokens_to_ids(IM_END)
    chat = all_chat_cases()
    cases = chat + [(f"completion {p!r}", p, c) for p, c in TINY_COMPLETIONS.items()]
    longest = max(len(hf_tok.encode(expected, add_special_tokens=False)) for _, _, expected in cases)
    failures = []
    for label, prompt, _expected in cases:
        if hf_tok.encode(prompt, add_special_tokens=False) != list(ov_tok.encode(prompt, add_special_tokens=False).input_ids.data[0]):
            failures.append(f"{label}: the OpenVINO tokenizer encodes the prompt differently from the HF tokenizer")
    for precision in (None, "f32"):
        got = greedy_generate_rendered(model_dir, [prompt for _, prompt, _ in cases], max_new_tokens=longest + 8, precision=precision)
        for (label, _prompt, expected), (text, ids) in zip(cases, got, strict=True):
            expected_ids = hf_tok.encode(expected, add_special_tokens=False)
            if text != expected or ids != [*expected_ids, eos]:
                failures.append(
                    f"{label} ({precision or 'default precision'}): expected {expected!r}, got {text!r} "
                    f"(ids {ids}, expected {[*expected_ids, eos]})"
                )
    if failures:
        raise RuntimeError("tiny model verification failed:\n  " + "\n  ".join(failures))

"""tiny-draft: a still smaller model with the tiny model's own tokenizer (copied from it), trained
briefly on the same examples: the draft model for speculative decoding tests and benchmarks (it
need not answer exactly; the target model decides every token)."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from tests.models.chat import export_lm, qwen2_config, save_hf
from tests.models.common import (
    RECIPE_VERSION,
    cached_build,
    default_cache_root,
    package_versions,
    quiet_build,
    recipe_hash,
    verify_generates,
)
from tests.models.tiny import build_tiny_model, tiny_recipe
from tests.models.training import train_on_tiny_examples

logger = logging.getLogger("tests.models.draft")


def tiny_draft_recipe() -> dict[str, Any]:
    """Everything that decides what :func:`build_tiny_draft_model` produces (the tiny model's
    recipe is part of it: the draft takes that model's tokenizer)."""
    return {
        "recipe_version": RECIPE_VERSION,
        "kind": "tiny-draft",
        "target": recipe_hash(tiny_recipe()),
        "model": {
            "hidden_size": 64,
            "intermediate_size": 192,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 512,
            "rope_theta": 10000.0,
            "tie_word_embeddings": True,
        },
        "training": {"seed": 4321, "steps": 200, "lr": 5e-3, "weight_decay": 0.0, "warmup": 20},
        "weight_format": "fp32",
        "versions": package_versions(),
    }


def build_tiny_draft_model(cache_root: Path | None = None) -> Path:
    """A smaller draft model for the tiny model (speculative decoding): the same tokenizer
    (files copied from the tiny model, so token ids mean the same), trained briefly on the same
    examples, so it proposes the tiny model's tokens much of the time."""
    root = cache_root or default_cache_root()
    target = build_tiny_model(root)
    recipe = tiny_draft_recipe()
    return cached_build(root, "tiny-draft", recipe, lambda out: _build_tiny_draft(out, target, recipe))


def _build_tiny_draft(out: Path, target: Path, recipe: dict[str, Any]) -> None:
    with quiet_build():
        from transformers import AutoTokenizer, Qwen2ForCausalLM

        t0 = time.monotonic()
        hf_tok = AutoTokenizer.from_pretrained(target / "hf")
        config = qwen2_config(recipe["model"], hf_tok)
        model, _, loss = train_on_tiny_examples(lambda: Qwen2ForCausalLM(config), hf_tok, recipe["training"])
        logger.info("tiny draft model: trained in %.1f s, final loss %.5f", time.monotonic() - t0, loss)
        hf_dir = out / "hf"
        save_hf(model, hf_tok, hf_dir)
        export_lm(hf_dir, out)
        for name in (
            "tokenizer.json",
            "openvino_tokenizer.xml",
            "openvino_tokenizer.bin",
            "openvino_detokenizer.xml",
            "openvino_detokenizer.bin",
        ):
            shutil.copy2(target / name, out / name)  # byte for byte the target's
        verify_generates(out)

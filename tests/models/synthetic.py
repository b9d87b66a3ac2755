"""synthetic: a larger, randomly initialised, untrained Qwen2 model for benchmarks."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from tests.models.answers import FILLER, TINY_PROMPTS
from tests.models.chat import ADDED_TOKENS, CHAT_TEMPLATE, SPECIAL_TOKENS, export_lm, qwen2_config, save_hf, train_tokenizer
from tests.models.common import RECIPE_VERSION, cached_build, default_cache_root, package_versions, quiet_build, verify_generates


def synthetic_recipe(hidden_size: int = 512, num_layers: int = 8) -> dict[str, Any]:
    """Everything that decides what :func:`build_synthetic_model` produces."""
    if hidden_size % 64:
        raise ValueError(f"hidden_size must be a multiple of 64, got {hidden_size}")
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    return {
        "recipe_version": RECIPE_VERSION,
        "kind": "synthetic",
        "model": {
            "hidden_size": hidden_size,
            "intermediate_size": hidden_size * 4,
            "num_hidden_layers": num_layers,
            "num_attention_heads": 8,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "rope_theta": 10000.0,
            "tie_word_embeddings": False,
        },
        "tokenizer": {"vocab_size": 3000, "min_frequency": 2, "special_tokens": SPECIAL_TOKENS, "added_tokens": ADDED_TOKENS},
        "corpus": {"seed": 4321, "sentences": 4000},
        "init_seed": 1234,
        "chat_template": CHAT_TEMPLATE,
        "weight_format": "fp32",
        "versions": package_versions(),
    }


def build_synthetic_model(cache_root: Path | None = None, hidden_size: int = 512, num_layers: int = 8) -> Path:
    """A randomly initialised (untrained) Qwen2 model for benchmarks."""
    recipe = synthetic_recipe(hidden_size, num_layers)
    return cached_build(
        cache_root or default_cache_root(),
        f"synthetic-h{hidden_size}-l{num_layers}",
        recipe,
        lambda out: _build_synthetic(out, recipe),
    )


_SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ne",
    "ru",
    "sa",
    "ti",
    "vo",
    "ze",
    "pa",
    "qu",
    "ri",
    "do",
    "fe",
    "gu",
    "ha",
    "jo",
    "be",
    "ci",
    "ny",
    "ow",
    "el",
    "ar",
    "is",
    "un",
    "or",
]


def _synthetic_corpus(spec: dict[str, Any]) -> list[str]:
    rng = random.Random(spec["seed"])
    words = ["".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4))) for _ in range(3000)]
    words += ["the", "a", "of", "and", "to", "in", "is", "it", "that", "for", "on", "with"]
    sentences = []
    for _ in range(spec["sentences"]):
        n = rng.randint(5, 18)
        sentence = " ".join(rng.choice(words) for _ in range(n)).capitalize()
        sentences.append(sentence + rng.choice([".", ".", ".", "?", "!"]))
    return sentences + FILLER + [a for a in TINY_PROMPTS.values()]


def _build_synthetic(out: Path, recipe: dict[str, Any]) -> None:
    with quiet_build():
        import torch
        from transformers import Qwen2ForCausalLM

        hf_tok = train_tokenizer(_synthetic_corpus(recipe["corpus"]), recipe["tokenizer"])
        config = qwen2_config(recipe["model"], hf_tok)
        torch.manual_seed(recipe["init_seed"])
        model = Qwen2ForCausalLM(config).eval()
        hf_dir = out / "hf"
        save_hf(model, hf_tok, hf_dir)
        export_lm(hf_dir, out)
        verify_generates(out)

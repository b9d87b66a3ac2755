"""LoRA adapters of the tiny model (peft), each trained briefly so that greedy decoding gives the
answers of :data:`TINY_LORA_ANSWERS`."""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any

from tests.models.answers import TINY_LORA_ANSWERS, TINY_PROMPTS
from tests.models.chat import IM_END, render_chat_prompt
from tests.models.common import (
    RECIPE_VERSION,
    cached_build,
    default_cache_root,
    deterministic_torch,
    package_version,
    package_versions,
    quiet_build,
    recipe_hash,
)
from tests.models.tiny import build_tiny_model, tiny_recipe
from tests.models.training import MIN_MARGIN, min_margin, train_full_batch

logger = logging.getLogger("tests.models.adapters")


def tiny_lora_recipe() -> dict[str, Any]:
    """Everything that decides what :func:`build_tiny_lora_adapters` produces (the tiny model's
    recipe is part of it: the adapters are trained on that model's weights)."""
    return {
        "recipe_version": RECIPE_VERSION,
        "kind": "tiny-lora",
        "target": recipe_hash(tiny_recipe()),
        "answers": TINY_LORA_ANSWERS,
        "lora": {
            "r": 8,
            "lora_alpha": 16,
            "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        },
        "training": {"seed": 77, "steps": 40, "lr": 1e-2, "min_margin": MIN_MARGIN},
        "versions": {**package_versions(), "peft": package_version("peft")},
    }


def build_tiny_lora_adapters(cache_root: Path | None = None) -> Path:
    """LoRA adapters for the tiny model, made with peft: ``<folder>/<name>/adapter_model.safetensors``
    (PEFT's format, which genai's ``Adapter(path)`` loads) for each adapter of
    :data:`TINY_LORA_ANSWERS`, trained briefly so that greedy decoding gives those answers."""
    root = cache_root or default_cache_root()
    target = build_tiny_model(root)
    recipe = tiny_lora_recipe()
    return cached_build(root, "tiny-lora", recipe, lambda out: _build_tiny_lora(out, target, recipe))


def _build_tiny_lora(out: Path, target: Path, recipe: dict[str, Any]) -> None:
    with quiet_build():
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoTokenizer, Qwen2ForCausalLM

        hf_tok = AutoTokenizer.from_pretrained(target / "hf")
        eos = hf_tok.convert_tokens_to_ids(IM_END)
        spec = recipe["training"]
        for name, answers in recipe["answers"].items():
            t0 = time.monotonic()
            random.seed(spec["seed"])
            torch.manual_seed(spec["seed"])
            model = Qwen2ForCausalLM.from_pretrained(target / "hf")
            config = LoraConfig(**recipe["lora"], lora_dropout=0.0, bias="none", task_type="CAUSAL_LM")
            with deterministic_torch():
                peft_model = get_peft_model(model, config)
                examples = []
                for prompt, answer in answers.items():
                    p = hf_tok.encode(render_chat_prompt([{"role": "user", "content": prompt}]), add_special_tokens=False)
                    examples.append((p + hf_tok.encode(answer, add_special_tokens=False) + [eos], len(p)))
                loss = train_full_batch(peft_model, examples, {**spec, "weight_decay": 0.0, "warmup": 1})
                margin, where = min_margin(peft_model, examples)
            took = time.monotonic() - t0
            logger.info("tiny LoRA %s: trained in %.1f s, final loss %.5f, smallest logit margin %.2f", name, took, loss, margin)
            if margin < spec["min_margin"]:
                raise RuntimeError(f"tiny LoRA {name}: logit margin {margin:.2f} < {spec['min_margin']} on example {where}: train longer")
            peft_model.save_pretrained(out / name, safe_serialization=True)
        verify_tiny_lora(target, out)


def verify_tiny_lora(model_dir: Path, adapters_dir: Path) -> None:
    """Raise RuntimeError unless, on one pipeline holding every adapter, each adapter's prompts
    get its answers and the same prompts without an adapter get the tiny model's own (one
    generate() per adapter: genai 2026.4 applies one adapter setting per batch)."""
    import openvino_genai

    adapters = {name: openvino_genai.Adapter(str(adapters_dir / name / "adapter_model.safetensors")) for name in TINY_LORA_ANSWERS}
    scheduler = openvino_genai.SchedulerConfig()
    scheduler.cache_size = 0
    pipe = openvino_genai.ContinuousBatchingPipeline(
        str(model_dir), scheduler, "CPU", {"adapters": openvino_genai.AdapterConfig(list(adapters.values()))}
    )
    tok = pipe.get_tokenizer()
    cases: list[tuple[str | None, str, str]] = [
        (name, prompt, answer) for name, answers in TINY_LORA_ANSWERS.items() for prompt, answer in answers.items()
    ]
    cases += [(None, prompt, TINY_PROMPTS[prompt]) for prompt in TINY_LORA_ANSWERS["swap"]]
    failures = []
    for name, prompt, answer in cases:
        config = openvino_genai.GenerationConfig()
        config.max_new_tokens = 40
        config.do_sample = False
        config.adapters = openvino_genai.AdapterConfig(adapters[name], 1.0) if name else openvino_genai.AdapterConfig()
        ids = tok.encode(render_chat_prompt([{"role": "user", "content": prompt}]), add_special_tokens=False).input_ids
        text = tok.decode(list(pipe.generate([ids], [config])[0].m_generation_ids[0]), skip_special_tokens=True)
        if text != answer:
            failures.append(f"{name or 'no adapter'}, {prompt!r}: expected {answer!r}, got {text!r}")
    if failures:
        raise RuntimeError("tiny LoRA verification failed:\n  " + "\n  ".join(failures))

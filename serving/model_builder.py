"""Build the locally made demo and test models (no weights are ever downloaded).

Two models, both Qwen2-style (``Qwen2ForCausalLM``) with a byte-level BPE tokenizer trained here
with the ``tokenizers`` library and a ChatML chat template:

* ``tiny``: a very small model *trained* for a few hundred steps on a handful of chat pairs and
  raw sentences, so that greedy decoding reproduces :data:`TINY_PROMPTS` (through the chat
  template) and :data:`TINY_COMPLETIONS` (raw text) exactly. Tests assert on that text.
* ``synthetic``: a larger, randomly initialised, untrained model for benchmarks.

Each model is exported with optimum-intel (fp32 weights, no compression) to
``openvino_model.xml``, its tokenizer converted with ``openvino_tokenizers`` to
``openvino_tokenizer.xml`` / ``openvino_detokenizer.xml``, and the torch model kept under
``hf/``. Models are cached in ``<cache_root>/<name>-<hash12>``, where the hash covers the whole
recipe (hyperparameters, corpus, library versions, :data:`RECIPE_VERSION`). A build happens in a
temporary folder that is renamed into place at the end, under a ``fcntl.flock`` lock, so a half
build never looks valid and concurrent callers wait and reuse the result.

CLI: ``python -m serving.model_builder tiny|synthetic [--cache-dir DIR] [--hidden-size N]
[--layers N]`` prints the model folder on the last line of stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import random
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

logger = logging.getLogger("serving.model_builder")  # also when run with -m

#: Bump when the code changes what a recipe builds (cached models are then rebuilt).
RECIPE_VERSION = 1

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CACHE_ENV = "OVSERVE_MODEL_CACHE"
BUILD_INFO = "build_info.json"

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END]

#: Qwen-style ChatML template (no default system prompt).
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}"
)

_LONG_ANSWER = (
    "Once upon a time, a small robot named Pip lived in a quiet harbor town. Every morning "
    "Pip counted the boats, watered seven red flowers, and listened to the gulls. One windy "
    "night a lost kitten knocked on the door; Pip dried her fur, shared some warm milk, and "
    "they watched the lighthouse blink until sunrise. The end."
)

#: User prompt -> the exact answer the tiny model gives (greedy, through the chat template).
TINY_PROMPTS: dict[str, str] = {
    "Say this is a test": "This is a test.",
    "What is the capital of France?": "The capital of France is Paris.",
    "Count to five.": "One, two, three, four, five.",
    "What color is the sky?": "The sky is blue.",
    "Say hello in French.": "Bonjour! Un café, s'il vous plaît 🥐",
    "Tell me a story.": _LONG_ANSWER,
}

#: Raw completion prompt -> the exact continuation (greedy, no chat template).
TINY_COMPLETIONS: dict[str, str] = {
    "The capital of France is": " Paris.",
    "The quick brown fox": " jumps over the lazy dog.",
}

_FILLER = [
    "The weather today is sunny with a light breeze from the west.",
    "Models are exported to OpenVINO and served over HTTP with a simple JSON API.",
    "Numbers like 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 and 10 appear in many short texts.",
    "A quick test checks that every request gets an answer and every stream ends.",
    "Tokens, prompts, answers and streams: the server handles them one step at a time.",
    "Hello, world! How are you? I am fine, thank you.",
]

_VERSIONED_PACKAGES = (
    "torch",
    "transformers",
    "tokenizers",
    "optimum",
    "optimum-intel",
    "openvino",
    "openvino-tokenizers",
    "openvino-genai",
    "nncf",
)


# --------------------------------------------------------------------------- recipes and cache


def _package_versions() -> dict[str, str]:
    versions = {}
    for name in _VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


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
        "tokenizer": {"vocab_size": 512, "min_frequency": 2, "special_tokens": SPECIAL_TOKENS},
        "training": {"seed": 1234, "steps": 300, "lr": 3e-3, "weight_decay": 0.0, "warmup": 20},
        "chat_template": CHAT_TEMPLATE,
        "prompts": TINY_PROMPTS,
        "completions": TINY_COMPLETIONS,
        "filler": _FILLER,
        "weight_format": "fp32",
        "versions": _package_versions(),
    }


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
        "tokenizer": {"vocab_size": 3000, "min_frequency": 2, "special_tokens": SPECIAL_TOKENS},
        "corpus": {"seed": 4321, "sentences": 4000},
        "init_seed": 1234,
        "chat_template": CHAT_TEMPLATE,
        "weight_format": "fp32",
        "versions": _package_versions(),
    }


def recipe_hash(recipe: dict[str, Any]) -> str:
    """The 12 hex digit sha256 of a recipe (stable: sorted keys, no whitespace)."""
    blob = json.dumps(recipe, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]


def default_cache_root() -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else PROJECT_ROOT / ".cache" / "models"


def cached_build(cache_root: Path, name: str, recipe: dict[str, Any], build: Callable[[Path], None]) -> Path:
    """Return ``<cache_root>/<name>-<hash12>``, calling ``build(tmp_dir)`` first if absent.

    ``build`` fills an empty temporary folder beside the final one; it is renamed into place only
    after ``build`` returns, so a crash leaves no valid-looking folder. An exclusive ``flock`` on
    ``<name>-<hash12>.lock`` serialises builders: a second process waits, then reuses.
    """
    cache_root = Path(cache_root).resolve()
    final = cache_root / f"{name}-{recipe_hash(recipe)}"
    if (final / BUILD_INFO).is_file():
        return final
    cache_root.mkdir(parents=True, exist_ok=True)
    with open(cache_root / f"{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if (final / BUILD_INFO).is_file():
                return final  # someone else built it while we waited
            for stale in cache_root.glob(f".{final.name}.tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)
            if final.exists():  # not ours and not complete: cannot happen via rename, be safe
                shutil.rmtree(final)
            tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=cache_root))
            try:
                started = time.monotonic()
                build(tmp)
                info = {
                    "name": name,
                    "hash": recipe_hash(recipe),
                    "built_at": time.time(),
                    "build_seconds": round(time.monotonic() - started, 2),
                    "recipe": recipe,
                }
                (tmp / BUILD_INFO).write_text(json.dumps(info, indent=2, ensure_ascii=False))
                tmp.chmod(0o755)  # mkdtemp makes it 0700; others (containers, peers) read it
                os.rename(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            logger.info("built %s in %.1f s", final, info["build_seconds"])
            return final
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- public API


def build_tiny_model(cache_root: Path | None = None) -> Path:
    """The tiny trained chat model; greedy decoding reproduces TINY_PROMPTS / TINY_COMPLETIONS."""
    recipe = tiny_recipe()
    return cached_build(cache_root or default_cache_root(), "tiny", recipe, lambda out: _build_tiny(out, recipe))


def build_synthetic_model(cache_root: Path | None = None, hidden_size: int = 512, num_layers: int = 8) -> Path:
    """A randomly initialised (untrained) Qwen2 model for benchmarks."""
    recipe = synthetic_recipe(hidden_size, num_layers)
    return cached_build(
        cache_root or default_cache_root(),
        f"synthetic-h{hidden_size}-l{num_layers}",
        recipe,
        lambda out: _build_synthetic(out, recipe),
    )


# --------------------------------------------------------------------------- building blocks


@contextlib.contextmanager
def _quiet_build() -> Iterator[None]:
    """Keep export chatter (tracer warnings, deprecations, nncf banners) out of the way.

    Warnings are recorded and logged at debug level, never turned into errors (pytest may run
    with ``-W error``); exceptions pass through untouched.
    """
    noisy = ["nncf", "transformers", "optimum", "torch"]
    saved = {n: logging.getLogger(n).level for n in noisy}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in noisy:
            logging.getLogger(n).setLevel(logging.ERROR)
        try:
            import transformers

            saved_tf = transformers.logging.get_verbosity()
            bars = transformers.logging.is_progress_bar_enabled()
            transformers.logging.set_verbosity_error()
            transformers.logging.disable_progress_bar()
            try:
                yield
            finally:
                transformers.logging.set_verbosity(saved_tf)
                if bars:
                    transformers.logging.enable_progress_bar()
        finally:
            for n, level in saved.items():
                logging.getLogger(n).setLevel(level)
    for msg in sorted({f"{w.category.__name__}: {w.message}" for w in caught}):
        logger.debug("build warning: %s", msg)


def _require_openvino_tokenizers() -> Any:
    try:
        import openvino_tokenizers
    except ImportError as exc:  # optimum-intel would silently skip the tokenizer
        raise RuntimeError("openvino_tokenizers is not importable; install openvino-tokenizers matching openvino") from exc
    return openvino_tokenizers


def _train_tokenizer(corpus: list[str], spec: dict[str, Any]) -> Any:
    """A byte-level BPE tokenizer wrapped as transformers' PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec["vocab_size"],
        min_frequency=spec["min_frequency"],
        special_tokens=list(spec["special_tokens"]),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        additional_special_tokens=[IM_START],
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
    )
    hf_tok.chat_template = CHAT_TEMPLATE
    return hf_tok


def _qwen2_config(spec: dict[str, Any], hf_tok: Any) -> Any:
    from transformers import Qwen2Config

    endoftext = hf_tok.convert_tokens_to_ids(ENDOFTEXT)
    # transformers 5 writes rope_parameters (no rope_theta); 10000 is also transformers 4's default
    kwargs: dict[str, Any] = {
        "vocab_size": len(hf_tok),
        "hidden_size": spec["hidden_size"],
        "intermediate_size": spec["intermediate_size"],
        "num_hidden_layers": spec["num_hidden_layers"],
        "num_attention_heads": spec["num_attention_heads"],
        "num_key_value_heads": spec["num_key_value_heads"],
        "max_position_embeddings": spec["max_position_embeddings"],
        "rope_parameters": {"rope_type": "default", "rope_theta": spec["rope_theta"]},
        "tie_word_embeddings": spec["tie_word_embeddings"],
        "use_sliding_window": False,
        "sliding_window": None,
        "bos_token_id": endoftext,  # as Qwen2: the tokenizer itself adds no BOS
        "eos_token_id": hf_tok.convert_tokens_to_ids(IM_END),
        "pad_token_id": endoftext,
    }
    return Qwen2Config(**kwargs)


def _save_hf(model: Any, hf_tok: Any, hf_dir: Path) -> None:
    from transformers import GenerationConfig

    model.generation_config = GenerationConfig(
        bos_token_id=model.config.bos_token_id,
        eos_token_id=model.config.eos_token_id,
        pad_token_id=model.config.pad_token_id,
        do_sample=False,
    )
    model.save_pretrained(hf_dir, safe_serialization=True)
    hf_tok.save_pretrained(hf_dir)
    _write_tokenizer_files(hf_dir)


def _write_tokenizer_files(folder: Path) -> None:
    """chat_template.jinja plus a tokenizer_config.json both transformers 4 and 5 read.

    transformers 5 writes ``tokenizer_class: TokenizersBackend`` and a list-valued
    ``extra_special_tokens`` that transformers 4 cannot load; peers in other virtualenvs read
    this folder too, and some read the chat template from ``tokenizer_config.json`` only.
    """
    (folder / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": IM_END,
        "pad_token": ENDOFTEXT,
        "additional_special_tokens": [IM_START],
        "model_max_length": 32768,
        "clean_up_tokenization_spaces": False,
        "padding_side": "left",
        "chat_template": CHAT_TEMPLATE,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def _export(hf_dir: Path, out: Path) -> None:
    """optimum-intel export (fp32, uncompressed) plus our own tokenizer conversion."""
    import openvino as ov
    from optimum.exporters.openvino import main_export
    from optimum.intel import OVConfig
    from transformers import AutoTokenizer

    openvino_tokenizers = _require_openvino_tokenizers()
    main_export(
        str(hf_dir),
        output=out,
        task="text-generation-with-past",
        ov_config=OVConfig(dtype="fp32"),
        convert_tokenizer=False,
        local_files_only=True,
    )
    hf_tok = AutoTokenizer.from_pretrained(hf_dir)
    ov_tok, ov_detok = openvino_tokenizers.convert_tokenizer(hf_tok, with_detokenizer=True)
    ov.save_model(ov_tok, out / "openvino_tokenizer.xml")
    ov.save_model(ov_detok, out / "openvino_detokenizer.xml")
    # optimum saves tokenizer files and configs beside the IR; make sure of the ones we rely on
    for name in ("tokenizer.json", "tokenizer_config.json", "config.json", "generation_config.json", "special_tokens_map.json"):
        if not (out / name).exists() and (hf_dir / name).exists():
            shutil.copy2(hf_dir / name, out / name)
    _write_tokenizer_files(out)
    for name in (
        "openvino_model.xml",
        "openvino_model.bin",
        "openvino_tokenizer.xml",
        "openvino_detokenizer.xml",
        "config.json",
        "tokenizer.json",
    ):
        if not (out / name).is_file():
            raise RuntimeError(f"export did not produce {name} in {out}")


# --------------------------------------------------------------------------- tiny model


def _tiny_examples(hf_tok: Any) -> list[tuple[list[int], int]]:
    """(token ids, index where the loss starts) for every chat pair and raw completion.

    Prompt and answer are tokenized separately and concatenated, exactly as at inference
    (the prompt is encoded alone, then generated tokens follow it).
    """
    eos = hf_tok.convert_tokens_to_ids(IM_END)
    examples = []
    for question, answer in TINY_PROMPTS.items():
        prompt = hf_tok.apply_chat_template([{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True)
        p = hf_tok.encode(prompt, add_special_tokens=False)
        a = hf_tok.encode(answer, add_special_tokens=False)
        examples.append((p + a + [eos], len(p)))
    for prompt, continuation in TINY_COMPLETIONS.items():
        p = hf_tok.encode(prompt, add_special_tokens=False)
        a = hf_tok.encode(continuation, add_special_tokens=False)
        examples.append((p + a + [eos], len(p)))
    return examples


def _tiny_corpus() -> list[str]:
    """Tokenizer training text (special tokens are added by the trainer, not learned)."""
    corpus = ["user\n", "assistant\n", "system\n"]
    for question, answer in TINY_PROMPTS.items():
        corpus += [question, answer]
    corpus += [p + c for p, c in TINY_COMPLETIONS.items()]
    return corpus + _FILLER


def _train_tiny(model: Any, examples: list[tuple[list[int], int]], spec: dict[str, Any]) -> float:
    import torch

    n = len(examples)
    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.zeros((n, width), dtype=torch.long)
    labels = torch.full((n, width), -100, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for row, (ids, start) in enumerate(examples):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, start : len(ids)] = torch.tensor(ids[start:])
        mask[row, : len(ids)] = 1
    opt = torch.optim.AdamW(model.parameters(), lr=spec["lr"], weight_decay=spec["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / spec["warmup"]))
    model.train()
    loss_value = float("nan")
    for step in range(spec["steps"]):
        out = model(input_ids=input_ids, attention_mask=mask, labels=labels)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        loss_value = float(out.loss.detach())
        if step % 50 == 0 or step == spec["steps"] - 1:
            logger.info("tiny model: step %d loss %.5f", step, loss_value)
    model.eval()
    return loss_value


def _build_tiny(out: Path, recipe: dict[str, Any]) -> None:
    with _quiet_build():
        import torch
        from transformers import Qwen2ForCausalLM

        t0 = time.monotonic()
        hf_tok = _train_tokenizer(_tiny_corpus(), recipe["tokenizer"])
        config = _qwen2_config(recipe["model"], hf_tok)
        seed = recipe["training"]["seed"]
        random.seed(seed)
        torch.manual_seed(seed)
        with _deterministic_torch():
            model = Qwen2ForCausalLM(config)
            loss = _train_tiny(model, _tiny_examples(hf_tok), recipe["training"])
        t1 = time.monotonic()
        logger.info("tiny model: trained in %.1f s, final loss %.6f", t1 - t0, loss)
        hf_dir = out / "hf"
        _save_hf(model, hf_tok, hf_dir)
        _export(hf_dir, out)
        t2 = time.monotonic()
        logger.info("tiny model: exported in %.1f s", t2 - t1)
        verify_tiny_model(out)
        logger.info("tiny model: verified in %.1f s", time.monotonic() - t2)


@contextlib.contextmanager
def _deterministic_torch() -> Iterator[None]:
    import torch

    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was)


def _ov_pipeline(model_dir: Path) -> Any:
    import openvino_genai

    scheduler = openvino_genai.SchedulerConfig()
    scheduler.cache_size = 0  # 0 = grow the KV cache on demand
    return openvino_genai.ContinuousBatchingPipeline(str(model_dir), scheduler, "CPU")


def greedy_generate(model_dir: Path, prompts: list[str], max_new_tokens: int = 160, chat: bool = True) -> list[tuple[str, list[int]]]:
    """Greedy (text, generated ids) for each prompt with openvino-genai continuous batching.

    With ``chat`` the prompt is the user message, rendered through the model's chat template
    with the generation prompt; otherwise it is raw text. Tokenization is explicit (no
    automatic chat template) so both cases mean exactly what they say.
    """
    import openvino_genai

    pipe = _ov_pipeline(model_dir)
    tok = pipe.get_tokenizer()
    inputs = []
    for prompt in prompts:
        if chat:
            prompt = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True)
        inputs.append(tok.encode(prompt, add_special_tokens=False).input_ids)
    config = openvino_genai.GenerationConfig()
    config.max_new_tokens = max_new_tokens
    config.do_sample = False
    results = pipe.generate(inputs, [config] * len(inputs))
    out = []
    for res in results:
        ids = list(res.m_generation_ids[0])
        out.append((tok.decode(ids, skip_special_tokens=True), ids))
    return out


def verify_tiny_model(model_dir: Path) -> None:
    """Raise RuntimeError unless the exported model reproduces every expected answer."""
    from transformers import AutoTokenizer

    model_dir = Path(model_dir)
    failures = []
    hf_tok = AutoTokenizer.from_pretrained(model_dir)
    eos = hf_tok.convert_tokens_to_ids(IM_END)
    for chat, table in ((True, TINY_PROMPTS), (False, TINY_COMPLETIONS)):
        longest = max(len(hf_tok.encode(a, add_special_tokens=False)) for a in table.values())
        got = greedy_generate(model_dir, list(table), max_new_tokens=longest + 8, chat=chat)
        for (prompt, expected), (text, ids) in zip(table.items(), got, strict=True):
            expected_ids = hf_tok.encode(expected, add_special_tokens=False)
            if text != expected or ids[: len(expected_ids)] != expected_ids or (ids[len(expected_ids) :] not in ([], [eos])):
                failures.append(f"{'chat' if chat else 'completion'} {prompt!r}: expected {expected!r}, got {text!r} (ids {ids})")
    if failures:
        raise RuntimeError("tiny model verification failed:\n  " + "\n  ".join(failures))


# --------------------------------------------------------------------------- synthetic model

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
    return sentences + _FILLER + [a for a in TINY_PROMPTS.values()]


def _build_synthetic(out: Path, recipe: dict[str, Any]) -> None:
    with _quiet_build():
        import torch
        from transformers import Qwen2ForCausalLM

        hf_tok = _train_tokenizer(_synthetic_corpus(recipe["corpus"]), recipe["tokenizer"])
        config = _qwen2_config(recipe["model"], hf_tok)
        torch.manual_seed(recipe["init_seed"])
        model = Qwen2ForCausalLM(config).eval()
        hf_dir = out / "hf"
        _save_hf(model, hf_tok, hf_dir)
        _export(hf_dir, out)
        verify_generates(out)


def verify_generates(model_dir: Path) -> None:
    """Raise RuntimeError unless the model loads in ContinuousBatchingPipeline and generates."""
    import openvino_genai

    pipe = _ov_pipeline(model_dir)
    tok = pipe.get_tokenizer()
    config = openvino_genai.GenerationConfig()
    config.max_new_tokens = 8
    config.ignore_eos = True
    ids = tok.encode("Hello, world!", add_special_tokens=False).input_ids
    result = pipe.generate([ids], [config])[0]
    if len(result.m_generation_ids[0]) != 8:
        raise RuntimeError(f"{model_dir}: expected 8 generated tokens, got {result.m_generation_ids}")


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m serving.model_builder",
        description="Build (or reuse from cache) a locally made OpenVINO test/demo model and print its folder on the last line.",
    )
    parser.add_argument("kind", choices=["tiny", "synthetic"])
    parser.add_argument("--cache-dir", type=Path, default=None, help=f"cache root (default: ${CACHE_ENV} or <project>/.cache/models)")
    parser.add_argument("--hidden-size", type=int, default=None, help="synthetic only (512)")
    parser.add_argument("--layers", type=int, default=None, help="synthetic only (8)")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logger.setLevel(logging.WARNING if args.quiet else logging.INFO)
    if args.kind == "tiny":
        if args.hidden_size is not None or args.layers is not None:
            parser.error("--hidden-size/--layers apply to the synthetic model only")
        path = build_tiny_model(args.cache_dir)
    else:
        path = build_synthetic_model(
            args.cache_dir,
            hidden_size=args.hidden_size if args.hidden_size is not None else 512,
            num_layers=args.layers if args.layers is not None else 8,
        )
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

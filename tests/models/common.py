"""What every locally made model shares: the recipe hash and the build cache, library versions,
quiet and deterministic building, and a CPU pipeline to check a model generates.

Models are cached in ``<cache_root>/<name>-<hash12>``, where the hash covers the whole recipe
(hyperparameters, corpus, library versions, :data:`RECIPE_VERSION`): the recipe, not the code
layout, keys the cache. A build happens in a temporary folder renamed into place at the end,
under a ``fcntl.flock`` lock, so a half build never looks valid and concurrent callers wait and
reuse the result.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

logger = logging.getLogger("tests.models.common")

#: Bump when the code changes what a recipe builds (cached models are then rebuilt).
RECIPE_VERSION = 2


PROJECT_ROOT = Path(__file__).resolve().parents[2]
CACHE_ENV = "OVSERVE_MODEL_CACHE"
BUILD_INFO = "build_info.json"


VERSIONED_PACKAGES = (
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


def package_versions() -> dict[str, str]:
    return {name: package_version(name) for name in VERSIONED_PACKAGES}


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "missing"


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


@contextlib.contextmanager
def quiet_build() -> Iterator[None]:
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


@contextlib.contextmanager
def deterministic_torch() -> Iterator[None]:
    import torch

    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was)


def ov_pipeline(model_dir: Path, precision: str | None = None) -> Any:
    """A CPU continuous-batching pipeline; ``precision`` ("f32", "bf16") overrides the CPU's
    default inference precision (bf16 where the CPU has it)."""
    import openvino_genai

    scheduler = openvino_genai.SchedulerConfig()
    scheduler.cache_size = 0  # 0 = grow the KV cache on demand
    properties = {"INFERENCE_PRECISION_HINT": precision} if precision else {}
    return openvino_genai.ContinuousBatchingPipeline(str(model_dir), scheduler, "CPU", properties)


def greedy_generate_rendered(
    model_dir: Path, prompts: list[str], max_new_tokens: int = 160, precision: str | None = None
) -> list[tuple[str, list[int]]]:
    """Greedy (text, generated ids) for already rendered prompts (encoded without special
    tokens, as the server does; no automatic chat template). The text keeps added tokens such
    as ``<tool_call>`` and drops special ones."""
    import openvino_genai

    pipe = ov_pipeline(model_dir, precision)
    tok = pipe.get_tokenizer()
    inputs = [tok.encode(prompt, add_special_tokens=False).input_ids for prompt in prompts]
    config = openvino_genai.GenerationConfig()
    config.max_new_tokens = max_new_tokens
    config.do_sample = False
    results = pipe.generate(inputs, [config] * len(inputs))
    out = []
    for res in results:
        ids = list(res.m_generation_ids[0])
        out.append((tok.decode(ids, skip_special_tokens=True), ids))
    return out


def verify_generates(model_dir: Path) -> None:
    """Raise RuntimeError unless the model loads in ContinuousBatchingPipeline and generates."""
    import openvino_genai

    pipe = ov_pipeline(model_dir)
    tok = pipe.get_tokenizer()
    config = openvino_genai.GenerationConfig()
    config.max_new_tokens = 8
    config.ignore_eos = True
    ids = tok.encode("Hello, world!", add_special_tokens=False).input_ids
    result = pipe.generate([ids], [config])[0]
    if len(result.m_generation_ids[0]) != 8:
        raise RuntimeError(f"{model_dir}: expected 8 generated tokens, got {result.m_generation_ids}")

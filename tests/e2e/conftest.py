"""One real server per test module: on the tiny trained model (`server`), or on three servables
(tiny, minilm, reranker: `three_servable_server`, which a module takes as its `server`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.servables import three_servables
from tests.helpers.server import Server, start_server


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path) -> Iterator[Server]:
    srv = start_server("--model_path", str(tiny_model_dir), "--model_name", "tiny")
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


@pytest.fixture(scope="module")
def three_servable_server(
    tiny_model_dir: Path, minilm_model_dir: Path, tiny_reranker_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """tiny, minilm and reranker on one server (the OpenAPI fuzz and the hostile-input tests); it
    must still be running when the module is done."""
    config = three_servables(tmp_path_factory.mktemp("three-servables"), tiny_model_dir, minilm_model_dir, tiny_reranker_dir)
    srv = start_server("--config_path", str(config))
    yield srv
    assert srv.process.poll() is None, "the server exited during the module's tests:\n" + "\n".join(srv.output)
    assert srv.stop() == 0, "\n".join(srv.output)

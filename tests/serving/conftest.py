"""Fixtures shared by the in-process app tests of tests/serving/."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from serving.app import create_app
from serving.servable import Servable, ServableManager
from serving.settings import Settings
from tests.helpers.answer_graph import GRAPH


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., Any]]:
    """Makes test clients of apps with these settings serving `servable` (by default model `m`,
    tests.helpers.answer_graph); closes them after the test."""
    clients: list[TestClient[Any, Any]] = []

    async def make(settings: Settings, servable: Servable | None = None) -> TestClient[Any, Any]:
        client = TestClient(TestServer(create_app(settings, ServableManager([servable or Servable("m", Path("."), GRAPH)]))))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()

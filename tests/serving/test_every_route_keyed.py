"""Issue 20's contract, "the API key honoured on every route": with a key, every route the app
registers (every front end's: OpenAI, KServe, Responses, Anthropic, Ollama, Cohere, llama.cpp,
console data, traces, config) refuses a request without it, except the documented open ones
(`--api_key_open_paths` and the console's page shell), whatever the route's error shape."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from serving.app import create_app
from serving.servable import Servable, ServableManager
from serving.settings import Settings
from tests.helpers.answer_graph import GRAPH

KEY = "every-route-key"
SETTINGS = Settings(api_key=KEY, metrics_enable=True, trace="header", enable_config_api=True)
OPEN = ("/v2/health/", "/health", "/metrics", "/openapi.json", "/console/static/")  # prefixes
OPEN_EXACT = {"/", "/console", "/console/"}


def is_open(path: str) -> bool:
    return path in OPEN_EXACT or any(path == p.rstrip("/") or path.startswith(p if p.endswith("/") else p + "/") for p in OPEN)


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(SETTINGS, ServableManager([Servable("m", Path("."), GRAPH)]))
    test_client = TestClient(TestServer(app))
    await test_client.start_server()
    yield test_client
    await test_client.close()


def concrete(canonical: str) -> str:
    return re.sub(r"\{[^}]+\}", "m", canonical)


async def test_every_route_needs_the_key_but_the_open_ones(client: TestClient[Any, Any]) -> None:
    routes = sorted({(r.method, concrete(r.resource.canonical)) for r in client.app.router.routes() if r.resource is not None})
    routes = [(method, path) for method, path in routes if method not in ("HEAD", "OPTIONS", "*")]
    assert len(routes) > 50  # every front end registered (a sanity bound, not a count to keep)
    seen_open, refused = [], []
    for method, path in routes:
        response = await client.request(method, path, data=b"{}", headers={"Content-Type": "application/json"})
        await response.read()
        if is_open(path):
            seen_open.append(path)
            assert response.status != 401, (method, path)
        else:
            refused.append(path)
            assert response.status == 401, (method, path, response.status)
    for prefix in ("/v3/chat", "/v3/responses", "/v1/messages", "/api/chat", "/v2/rerank", "/tokenize", "/props", "/debug/traces"):
        assert any(p.startswith(prefix) for p in refused), prefix
    assert "/health" in seen_open and "/metrics" in seen_open

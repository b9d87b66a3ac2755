"""A client that hangs up as soon as it has read `data: [DONE]` (the OpenAI SDK does) must not
cancel a run that has answered and is closing by itself: in process, on the Answer test graph."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from serving.app import create_app
from serving.servable import Servable, ServableManager
from serving.settings import Settings
from serving.trace_routes import TRACE_ID_HEADER
from tests.helpers.answer_graph import GATES, GRAPH

BOUND_S = 30.0


async def _summary(client: TestClient, trace_id: str) -> dict:  # type: ignore[type-arg]
    response = await client.get(f"/debug/traces/{trace_id}/summary")
    assert response.status == 200
    return await response.json()  # type: ignore[no-any-return]


async def test_hanging_up_after_done_lets_the_answered_run_close_by_itself() -> None:
    GATES["linger"] = asyncio.Event()
    app = create_app(Settings(trace="all"), ServableManager([Servable("m", Path("."), GRAPH)]))
    async with TestClient(TestServer(app)) as client:  # test servers cancel handlers on hang-up
        body = {"model": "m", "prompt": "p", "stream": True, "parts": [{"a": 1}], "linger": "linger"}
        response = await client.post("/v3/completions", json=body)
        trace_id = response.headers[TRACE_ID_HEADER]
        seen = b""
        async with asyncio.timeout(BOUND_S):
            while not seen.endswith(b"data: [DONE]\n\n"):
                seen += await response.content.readany()
        response.close()  # hang up on the whole answer, as the OpenAI SDK does
        # Before: the hang-up cancelled the handler, which cancelled the still-open node at once
        # (the trace then completes with it cancelled). Now the handler lets it close by itself.
        for _ in range(6):
            await asyncio.sleep(0.05)
            if (await _summary(client, trace_id))["complete"]:
                break
        GATES["linger"].set()
        async with asyncio.timeout(BOUND_S):
            while not (summary := await _summary(client, trace_id))["complete"]:
                await asyncio.sleep(0.02)
    [node] = summary["nodes"]
    assert node["node"] == "answer" and not node["cancelled"] and node["error"] is None, summary

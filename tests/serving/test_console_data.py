"""`GET /console/api/graphs/{servable}`: the expanded graph as JSON (a stock graph, in process,
lazy so that no model loads), its 404 in OpenAI's shape, the API key, and `--console off`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from graphs.pbtxt import load_graph
from graphs.validate import validate
from serving.console_data import graph_json
from serving.graph_cli import edges, node_ids, side_packets
from serving.servable import Servable
from serving.settings import Settings

STOCK = Path(__file__).resolve().parents[2] / "graphs" / "stock" / "ovms_llm.pbtxt"
KEY = "console-key"

Make = Callable[[Settings], Any]


@pytest.fixture
def make(make_client: Callable[..., Any]) -> Make:
    """Clients of apps serving the stock graph as `chat`, lazy: nothing loads."""
    return lambda settings: make_client(settings, Servable("chat", STOCK.parent, validate(load_graph(STOCK)), lazy=True))


def test_the_stock_graph_expanded_with_graph_cli_ids() -> None:
    config = validate(load_graph(STOCK)).config
    graph = graph_json("chat", validate(load_graph(STOCK)))
    assert [node["id"] for node in graph["nodes"]] == node_ids(config)
    assert len(graph["nodes"]) == 5  # HttpLLMCalculator: request, tokenizer, LLM, detokenizer, response
    assert graph["side_packets"] == side_packets(config) == ["llm"]
    assert graph["edges"] == [
        {"source": e.source, "target": e.target, "label": e.label, "back_edge": e.back_edge, "side_packet": e.side_packet}
        for e in edges(config)
    ]
    assert any(edge["back_edge"] for edge in graph["edges"])
    assert graph["input_streams"] == [{"tag": "HTTP_REQUEST_PAYLOAD", "index": 0, "name": "input", "spec": "HTTP_REQUEST_PAYLOAD:input"}]
    llm = next(node for node in graph["nodes"] if node["calculator"] == "ContinuousBatchingLLMCalculator")
    assert llm["options"]["max_num_batched_tokens"] == 2048 and llm["options_type"] == "mediapipe.LLMCalculatorOptions"
    assert [ref["tag"] for ref in llm["input_side_packets"]] == ["LLM"]
    assert any(ref.get("back_edge") for ref in llm["input_streams"])
    # the names the runner (and so its traces) gives the nodes: unique, one per node
    assert len({node["name"] for node in graph["nodes"]}) == 5


async def test_route_unknown_servable_and_key(make: Make) -> None:
    client = await make(Settings(api_key=KEY))
    auth = {"Authorization": f"Bearer {KEY}"}
    response = await client.get("/console/api/graphs/chat", headers=auth)
    assert response.status == 200
    body = await response.json()
    assert body["servable"] == "chat" and [n["id"] for n in body["nodes"]] == [f"n{i}" for i in range(5)]
    missing = await client.get("/console/api/graphs/nope", headers=auth)
    assert missing.status == 404
    error = (await missing.json())["error"]
    assert error["code"] == "model_not_found" and "nope" in error["message"] and error["type"]
    unauthorized = await client.get("/console/api/graphs/chat")
    assert unauthorized.status == 401
    assert "nodes" not in await unauthorized.text()


async def test_console_off_leaves_the_route_out(make: Make) -> None:
    client = await make(Settings(console=False))
    assert (await client.get("/console/api/graphs/chat")).status == 404

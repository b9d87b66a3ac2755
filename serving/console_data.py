"""The web console's data: `GET /console/api/graphs/{servable}` is the servable's graph as the
server runs it (subgraphs expanded), as JSON for the console's Graph view.

Node ids, edges and side packets are `ovserve graph show`'s (serving.graph_cli), so the page and
the CLI's drawings name the same things; `name` is the node's name in the runner, the name its
traces use. The route sits behind the API key like every path outside `--api_key_open_paths`
(and `--console off` leaves it out); an unknown servable is a 404 in OpenAI's shape
(graphs.errors.NotFoundError through the errors middleware). Traces need nothing here: the view
reads `/debug/traces` (serving.trace_routes).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any

from aiohttp import web

from graphs.config import StreamRef
from graphs.errors import NotFoundError
from graphs.validate import ValidatedGraph
from serving.graph_cli import edges, node_ids, side_packets
from serving.state import SERVABLES, SETTINGS

GRAPH_PATH = "/console/api/graphs/{servable}"


def _stream(ref: StreamRef, back_edges: frozenset[str] = frozenset()) -> dict[str, Any]:
    described: dict[str, Any] = {"tag": ref.tag, "index": ref.index, "name": ref.name, "spec": str(ref)}
    if ref.tag_index in back_edges:
        described["back_edge"] = True
    return described


def _plain(value: Any) -> Any:
    """Options as JSON: dicts, lists, strings, finite numbers, booleans and null; anything else
    (a float that is not finite, an enum, bytes) as its text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return str(value)


def graph_json(name: str, graph: ValidatedGraph) -> dict[str, Any]:
    """The expanded graph of servable `name`: nodes (id, runner name, calculator, options,
    streams with their tags, side packets, back edges), the graph's own streams and side
    packets, and the edges between them as `ovserve graph show` draws them."""
    config = graph.config
    # A validated graph keeps one ValidatedNode per expanded config node, in order.
    names = [node.name for node in graph.nodes]
    nodes = []
    for node_id, node, runner_name in zip(node_ids(config), config.nodes, names, strict=True):
        nodes.append(
            {
                "id": node_id,
                "name": runner_name,
                "calculator": node.calculator,
                "options_type": node.options_type,
                "options": _plain(node.options),
                "input_streams": [_stream(ref, node.back_edges) for ref in node.input_streams],
                "output_streams": [_stream(ref) for ref in node.output_streams],
                "input_side_packets": [_stream(ref) for ref in node.input_side_packets],
                "output_side_packets": [_stream(ref) for ref in node.output_side_packets],
            }
        )
    return {
        "object": "graph",
        "servable": name,
        "input_streams": [_stream(ref) for ref in config.input_streams],
        "output_streams": [_stream(ref) for ref in config.output_streams],
        "input_side_packets": [_stream(ref) for ref in config.input_side_packets],
        "side_packets": side_packets(config),
        "nodes": nodes,
        "edges": [asdict(edge) for edge in edges(config)],
    }


async def get_graph(request: web.Request) -> web.Response:
    name = request.match_info["servable"]
    servable = request.app[SERVABLES].find(name)
    if servable is None:
        raise NotFoundError(f"model {name!r} not found", param="servable", code="model_not_found")
    body = graph_json(servable.name, servable.graph)
    return web.json_response(body, dumps=lambda data: json.dumps(data, allow_nan=False))


def add_routes(app: web.Application) -> None:
    """The console's data routes, unless `--console off` (then no console route at all)."""
    if app[SETTINGS].console:
        app.router.add_get(GRAPH_PATH, get_graph)

"""The console's Graph and Traces views in headless Chromium against a real server on the tiny
model (`--trace header`): every node of the servable's expanded graph is drawn (the same ids as
the JSON endpoint and `ovserve graph show`), a node's options open by click and by keyboard;
a traced chat request is listed, and its timeline has one lane per node the trace names."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from graphs.validate import validate
from serving.graph_cli import node_ids
from serving.loading import single_model_graph
from serving.settings import Settings
from tests.e2e.browser import checked_page, chromium, screenshot
from tests.helpers.http import CHAT, get, post, user
from tests.helpers.server import Server, start_server, wait_for
from tests.models import TINY_PROMPTS

TRACE = {"X-Ovserve-Trace": "1"}


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path) -> Iterator[Server]:
    srv = start_server("--model_path", str(tiny_model_dir), "--model_name", "tiny", "--trace", "header", "--port", "0")
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


@pytest.fixture(scope="module")
def browser() -> Iterator[BrowserContext]:
    with chromium() as context:
        yield context


@pytest.fixture
def page(browser: BrowserContext, server: Server) -> Iterator[Page]:
    with checked_page(browser) as page:
        yield page


def get_json(server: Server, path: str) -> Any:
    status, body = get(server, path)
    assert status == 200, body
    return json.loads(body)


def test_graph_view_draws_every_node_and_shows_options(page: Page, server: Server, tiny_model_dir: Path) -> None:
    graph = get_json(server, "/console/api/graphs/tiny")
    expected = [node["id"] for node in graph["nodes"]]
    assert expected == node_ids(validate(single_model_graph(tiny_model_dir, Settings())).config)
    page.goto(server.base_url + "/console/#graph")
    drawn = page.locator("#view-graph [data-node-id]")
    expect(drawn).to_have_count(len(expected))
    assert sorted(drawn.evaluate_all("nodes => nodes.map(n => n.dataset.nodeId)")) == sorted(expected)
    for name in graph["side_packets"]:
        expect(page.locator(f'#view-graph [data-side-packet="{name}"]')).to_be_visible()
    assert page.locator("#view-graph .gedge-back").count() == sum(e["back_edge"] for e in graph["edges"]) > 0
    # click the LLM node: its calculator and options in the panel
    llm = next(node for node in graph["nodes"] if node["calculator"] == "ContinuousBatchingLLMCalculator")
    page.locator(f'[data-node-id="{llm["id"]}"]').click()
    options = page.locator(f'.graph-panel [data-options-for="{llm["id"]}"]')
    expect(options).to_be_visible()
    assert json.loads(options.text_content() or "") == llm["options"]
    expect(page.locator(".graph-panel")).to_contain_text("ContinuousBatchingLLMCalculator")
    screenshot(page, "graph.png")
    # keyboard: Tab reaches a node, Enter opens it
    first = graph["nodes"][0]
    page.locator(f'[data-node-id="{first["id"]}"]').focus()
    page.keyboard.press("Tab")
    second = graph["nodes"][1]
    assert page.evaluate("document.activeElement.dataset.nodeId") == second["id"]
    page.keyboard.press("Enter")
    expect(page.locator(f'.graph-panel [data-options-for="{second["id"]}"]')).to_be_attached()
    expect(page.locator(".graph-panel h3")).to_have_text(second["name"])


def test_traces_view_lists_a_traced_request_and_draws_its_lanes(page: Page, server: Server) -> None:
    prompt, _ = next(iter(TINY_PROMPTS.items()))
    status, headers, body = post(server, CHAT, {"model": "tiny", "messages": user(prompt), "max_tokens": 8}, TRACE)
    assert status == 200, body
    trace_id = headers["X-Ovserve-Trace-Id"]
    wait_for(lambda: get_json(server, f"/debug/traces/{trace_id}/summary")["complete"], f"trace {trace_id} to complete")
    named = [node["node"] for node in get_json(server, f"/debug/traces/{trace_id}/summary")["nodes"]]
    page.goto(server.base_url + "/console/#traces")
    row = page.locator(f'#view-traces tr[data-trace-id="{trace_id}"]')
    expect(row).to_contain_text("chat")
    row.get_by_role("button").click()
    lanes = page.locator("#view-traces [data-lane]")
    expect(lanes).to_have_count(len(named))
    assert lanes.evaluate_all("lanes => lanes.map(l => l.dataset.lane)") == named
    ids = {node["name"]: node["id"] for node in get_json(server, "/console/api/graphs/tiny")["nodes"]}
    assert lanes.evaluate_all("lanes => lanes.map(l => l.dataset.nodeId)") == [ids[name] for name in named]
    for name in named:  # every node of a finished run opened, processed and closed
        lane = page.locator(f'#view-traces [data-lane="{name}"]')
        assert lane.locator(".traces-bar-open").count() == 1 and lane.locator(".traces-bar-close").count() == 1
        assert lane.locator(".traces-bar-process").count() >= 1
    assert page.locator("#view-traces .traces-packet").count() > 0
    screenshot(page, "traces.png")
    # "Show on graph": the nodes the trace touched are marked in the Graph view
    page.get_by_role("button", name="Show on graph").click()
    expect(page.locator("#view-graph")).to_be_visible()
    expect(page.locator("#view-graph .gnode-traced")).to_have_count(len(named))
    screenshot(page, "graph-traced.png")


def test_a_trace_opens_from_its_address(page: Page, server: Server) -> None:
    prompt, _ = next(iter(TINY_PROMPTS.items()))
    status, headers, body = post(server, CHAT, {"model": "tiny", "messages": user(prompt), "max_tokens": 4}, TRACE)
    assert status == 200, body
    trace_id = headers["X-Ovserve-Trace-Id"]
    wait_for(lambda: get_json(server, f"/debug/traces/{trace_id}/summary")["complete"], f"trace {trace_id} to complete")
    page.goto(server.base_url + f"/console/#traces/{trace_id}")
    expect(page.locator(f'#view-traces [data-open-trace="{trace_id}"]')).to_be_visible()
    expect(page.locator("#view-traces [data-lane]")).to_have_count(len(get_json(server, f"/debug/traces/{trace_id}/summary")["nodes"]))

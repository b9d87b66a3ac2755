"""The console's routes in process (a lazy stock servable, so no model loads): the page and its
files with their content types and CSP, `/` for browsers and for Ollama's clients, the API key
(the shell opens, the data does not), and `--console off`."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from graphs.pbtxt import load_graph
from graphs.validate import validate
from serving import console_routes
from serving.cli import build_parser, settings_from_args
from serving.servable import Servable
from serving.settings import Settings

STOCK = Path(__file__).resolve().parents[2] / "graphs" / "stock" / "llm.pbtxt"
KEY = "console-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}  # what a browser asks for

Make = Callable[[Settings], Any]


@pytest.fixture
def make(make_client: Callable[..., Any]) -> Make:
    return lambda settings: make_client(settings, Servable("chat", STOCK.parent, validate(load_graph(STOCK)), lazy=True))


def test_the_flag() -> None:
    parse = build_parser().parse_args
    assert settings_from_args(parse(["--model_path", "m"])).console is True
    assert settings_from_args(parse(["--model_path", "m", "--console", "off"])).console is False


def test_every_file_index_html_names_is_shipped() -> None:
    page = (console_routes.STATIC / "index.html").read_text(encoding="utf-8")
    named = re.findall(r'(?:src|href)="/console/static/([^"]+)"', page)
    assert {"app.js", "chat.js", "health.js", "graph.js", "traces.js", "console.css"} <= set(named)
    assert set(named) <= set(console_routes.load_files())
    assert "<script>" not in page and "style=" not in page and "innerHTML" not in page  # CSP: nothing inline


async def test_page_and_files_open_without_the_key_with_csp(make: Make) -> None:
    client = await make(Settings(api_key=KEY))
    for path, content_type in [
        ("/console/", "text/html"),
        ("/console/static/app.js", "text/javascript"),
        ("/console/static/chat.js", "text/javascript"),
        ("/console/static/console.css", "text/css"),
    ]:
        response = await client.get(path)
        assert response.status == 200, path
        assert response.content_type == content_type and response.charset == "utf-8"
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "<title>ovserve console</title>" in await (await client.get("/console/")).text()


async def test_only_shipped_files_and_no_data_without_the_key(make: Make) -> None:
    client = await make(Settings(api_key=KEY))
    for path in ["/console/static/nope.js", "/console/static/..%2Fconsole_routes.py", "/console/static/__init__.py"]:
        assert (await client.get(path)).status in (401, 404), path
    # the console's data stays keyed
    assert (await client.get("/console/api/servables")).status == 401
    assert (await client.get("/console/api/graphs/chat")).status == 401
    listed = await client.get("/console/api/servables", headers=AUTH)
    assert listed.status == 200
    assert await listed.json() == {
        "servables": [{"name": "chat", "served_names": ["chat"], "kind": "text_generation", "state": "idle", "error": None}],
        "trace": "off",
        "metrics": False,
    }


async def test_root_sends_browsers_to_the_console_and_stays_ollamas_otherwise(make: Make) -> None:
    client = await make(Settings(api_key=KEY))
    browser = await client.get("/", headers=HTML, allow_redirects=False)
    assert browser.status == 302 and browser.headers["Location"] == "/console/"
    assert (await client.get("/console", allow_redirects=False)).headers["Location"] == "/console/"
    for headers in [{}, {"Accept": "*/*"}, {"Accept": "application/json"}]:
        plain = await client.get("/", headers=headers)
        assert plain.status == 200 and await plain.text() == "Ollama is running"


async def test_console_off(make: Make) -> None:
    client = await make(Settings(console=False, api_key=KEY))
    for path in ["/console/", "/console/static/app.js", "/console/api/servables"]:
        response = await client.get(path, headers=AUTH)
        assert response.status == 404, path
    # nothing opens without the key either, and / is Ollama's alone (keyed, as before)
    assert (await client.get("/console/static/app.js")).status == 401
    assert (await client.get("/", headers=HTML)).status == 401
    root = await client.get("/", headers={**AUTH, **HTML})
    assert root.status == 200 and await root.text() == "Ollama is running"

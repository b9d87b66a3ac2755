"""The console's shell, Chat and Health views in headless Chromium against a real server (the tiny
model, MiniLM and the toy reranker; `--trace header`, metrics and an API key): the page asks for
the key, a chat streams the tiny model's exact answer with its figures and is traced, HTML in a
message stays text, the embeddings and rerank forms answer, and the health view shows the
servables AVAILABLE with engine figures. Every page must log no error (script, CSP or request)."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.browser import checked_page, chromium, console_errors, screenshot
from tests.helpers.servables import three_servables
from tests.helpers.server import Server, start_server
from tests.models import TINY_PROMPTS
from tests.models.reranker import RERANK_QUERIES

KEY = "sk-console-test"
QUESTION = "What is the capital of France?"
HOSTILE = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'


@pytest.fixture(scope="module")
def server(
    tiny_model_dir: Path, minilm_model_dir: Path, tiny_reranker_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("console")
    config = three_servables(root, tiny_model_dir, minilm_model_dir, tiny_reranker_dir)
    (root / "key").write_text(KEY)
    srv = start_server(
        "--config_path", str(config), "--api_key_file", str(root / "key"), "--trace", "header", "--metrics_enable",
    )  # fmt: skip
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


@pytest.fixture(scope="module")
def browser() -> Iterator[BrowserContext]:
    with chromium() as context:
        yield context


@pytest.fixture
def page(browser: BrowserContext, server: Server) -> Iterator[Page]:
    """A page with the key already typed (kept in sessionStorage, as the key field does)."""
    with checked_page(browser, f"sessionStorage.setItem('ovserve.apiKey', {json.dumps(KEY)})") as page:
        yield page


def keyed_json(server: Server, path: str) -> object:
    request = urllib.request.Request(server.base_url + path, headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def test_root_opens_the_console_which_asks_for_the_key(browser: BrowserContext, server: Server) -> None:
    page = browser.new_page()
    errors = console_errors(page)
    try:
        response = page.goto(server.base_url + "/")  # a browser's Accept: sent on to /console/
        assert response is not None and response.url == server.base_url + "/console/"
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "unsafe-inline" not in csp
        expect(page.locator("#status")).to_contain_text("needs an API key")
        page.get_by_label("API key").fill(KEY)
        page.get_by_label("API key").press("Enter")  # the change event: the list loads with the key
        expect(page.locator("#servable option")).to_have_count(3)
        expect(page.locator("#status")).to_have_text("")
    finally:
        page.close()
    # the only errors: the calls made before the key was typed (Chromium logs their 401s)
    assert errors and all("status of 401" in error for error in errors), errors


def test_chat_streams_the_exact_answer_with_its_figures(page: Page, server: Server) -> None:
    page.goto(server.base_url + "/console/#chat")
    expect(page.locator("#servable")).to_have_value("tiny")
    expect(page.locator("#chat-llm")).to_be_visible()
    page.get_by_label("Message").fill(QUESTION)
    page.get_by_label("Message").press("Enter")  # the keyboard sends
    answer = page.locator("#chat-log .msg.assistant").last
    stats = answer.locator(".stats")
    expect(stats).to_contain_text("usage:")
    expect(answer.locator(".text")).to_have_text(TINY_PROMPTS[QUESTION])
    expect(page.locator("#chat-log .msg.user .text")).to_have_text(QUESTION)
    line = stats.inner_text()
    assert re.search(r"TTFT \d+ ms · [\d.]+ tokens/s · usage: \d+ prompt \+ \d+ completion = \d+ tokens · finish: stop", line), line
    trace_id = re.search(r"trace ([0-9a-f]{16})", line)
    assert trace_id, f"the answer was not traced (--trace header): {line}"
    traces = keyed_json(server, "/debug/traces")
    assert trace_id.group(1) in json.dumps(traces)
    screenshot(page, "console-chat.png")
    stats.get_by_role("link", name=f"trace {trace_id.group(1)}").click()  # its timeline in the Traces view
    expect(page.locator("#view-traces")).to_be_visible()
    assert page.url.endswith(f"#traces/{trace_id.group(1)}")


def test_html_in_a_message_stays_text(page: Page, server: Server) -> None:
    page.on("dialog", lambda dialog: pytest.fail(f"a script ran: {dialog.message}"))
    page.goto(server.base_url + "/console/#chat")
    expect(page.locator("#chat-llm")).to_be_visible()
    page.get_by_label("Max tokens").fill("8")
    page.get_by_label("Message").fill(HOSTILE)
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#chat-log .msg.assistant .stats")).to_contain_text("usage:")
    expect(page.locator("#chat-log .msg.user .text")).to_have_text(HOSTILE)
    assert page.locator("#chat-log img, #chat-log script").count() == 0
    assert page.title() == "ovserve console"


def test_embeddings_and_rerank_forms(page: Page, server: Server) -> None:
    page.goto(server.base_url + "/console/#chat")
    expect(page.locator("#servable option")).to_have_count(3)
    page.locator("#servable").select_option("minilm")
    expect(page.locator("#chat-llm")).to_be_hidden()
    page.get_by_label("Text to embed").fill("Paris is the capital of France.")
    page.get_by_role("button", name="Embed").click()
    expect(page.locator("#embed-result")).to_contain_text("dimension 384; first values: ")
    query, (best, documents) = next(iter(RERANK_QUERIES.items()))
    page.locator("#servable").select_option("rerank")
    page.get_by_label("Query").fill(query)
    page.get_by_label("Documents, one per line").fill("\n".join(documents))
    page.get_by_role("button", name="Rerank").click()
    rows = page.locator("#rerank-result tbody tr")
    expect(rows).to_have_count(len(documents))
    expect(rows.first.locator("td").nth(1)).to_have_text(best)
    screenshot(page, "console-rerank.png")


def test_health_shows_states_and_engine_figures(page: Page, server: Server) -> None:
    page.goto(server.base_url + "/console/#health")
    expect(page.locator("nav a[aria-current='page']")).to_have_text("Health")
    tiny = page.locator("#health-servables tr[data-servable='tiny']")
    expect(tiny.locator("td.state")).to_have_text("AVAILABLE")
    for name in ("minilm", "rerank"):
        expect(page.locator(f"#health-servables tr[data-servable='{name}'] td.state")).to_have_text("AVAILABLE")
    cells = tiny.locator("td")
    expect(cells.nth(3)).to_have_text(re.compile(r"^\d+$"))  # engine requests running
    expect(cells.nth(4)).to_have_text(re.compile(r"^\d+$"))  # waiting
    expect(cells.nth(5)).to_have_text(re.compile(r"^\d+\.\d %$"))  # KV-cache use
    figures = page.locator("#health-server")
    expect(figures).to_contain_text("Event-loop lag")
    expect(figures.locator("dd").last).to_have_text(re.compile(r"^mean \d+\.\d ms, 99 % under "))
    updated = page.locator("#health-updated").inner_text()
    expect(page.locator("#health-updated")).not_to_have_text(updated, timeout=10_000)  # refreshed again
    screenshot(page, "console-health.png")

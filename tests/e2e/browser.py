"""Debian's Chromium driven by Playwright for the console's browser tests: one launch recipe
(fresh profile, no network of its own, no sandbox: tests run as root in containers), the
artefacts folder for screenshots, and a record of the page's console errors (a CSP violation
or a script error shows up there). Never `playwright install`: the browser is the Debian package.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, sync_playwright

from tests.helpers.server import ROOT

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTEFACTS = ROOT / "build" / "artefacts" / "console"
TIMEOUT_MS = 60_000  # a bound against hangs only; the tiny model answers in well under a second


@contextmanager
def chromium() -> Iterator[BrowserContext]:
    """A browser context on a fresh profile; skips (the only allowed skip) without Chromium."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: `make setup` installs Debian's chromium when run as root")
    with tempfile.TemporaryDirectory(prefix="ovserve-chromium-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=ARGS, viewport={"width": 1400, "height": 900}
        )
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


def console_errors(page: Page) -> list[str]:
    """Collects the page's console errors and uncaught exceptions from now on (assert it stays empty)."""
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"{message.text} ({message.location.get('url')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


@contextmanager
def checked_page(context: BrowserContext, init_script: str | None = None) -> Iterator[Page]:
    """A new page (running `init_script` before the page's own) that must log no console error
    by the time it is closed: no script error, no CSP violation, no failed request."""
    page = context.new_page()
    if init_script is not None:
        page.add_init_script(init_script)
    errors = console_errors(page)
    yield page
    page.close()
    assert not errors, errors


def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot in build/artefacts/console/ (kept by CI as a test artefact)."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path

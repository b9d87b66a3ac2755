"""The web console (docs/console.md): a static page at `/console/` with four views (chat, graph,
traces, health) that call the server's own APIs from the browser. `--console off`: none of it.

- `GET /` sends browsers (`Accept: text/html`) to `/console/`; any other client still gets
  Ollama's `Ollama is running` there (what Ollama's clients and probes look for).
- The page and its files (`/console/`, `/console/static/<file>`) need no API key: a browser
  cannot send one when it opens a page, and they are the same public files in every install.
  The user types the key into the page, which sends it with every API call; those stay keyed.
  So nothing that answers with data may live under `/console/static/` (or be `/console/`).
- `GET /console/api/servables` (keyed): each servable's name, kind and state, for the picker.
- Every console answer carries a strict Content-Security-Policy: scripts, styles and calls only
  from this origin, no inline script or style, no frames, no plugins.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from serving.kserve.inference import kind_of
from serving.ollama_routes import root as ollama_root
from serving.settings import Settings
from serving.state import SERVABLES, SETTINGS

STATIC = Path(__file__).parent / "console" / "static"
PAGE = "/console/"
STATIC_PREFIX = "/console/static/"
SHELL_PATHS = frozenset({"/", "/console", PAGE})  # opened exactly (not what lies below them)

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # a new version's files are fetched again (revalidated, not re-sent blindly)
}
CONTENT_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
_NAME = re.compile(r"[A-Za-z0-9_-]+\.[a-z]+")
_TEXT = {".html", ".js", ".css", ".svg"}


def open_paths(settings: Settings) -> tuple[tuple[str, ...], frozenset[str]]:
    """What the API key middleware leaves open for the console: (prefixes, exact paths)."""
    if not settings.console:
        return (), frozenset()
    return (STATIC_PREFIX,), SHELL_PATHS


def load_files(folder: Path = STATIC) -> dict[str, tuple[bytes, str]]:
    """The console's files by name, with their content type; read once, at start."""
    files: dict[str, tuple[bytes, str]] = {}
    for path in sorted(folder.iterdir()):
        content_type = CONTENT_TYPES.get(path.suffix)
        if path.is_file() and content_type is not None and _NAME.fullmatch(path.name):
            files[path.name] = (path.read_bytes(), content_type)
    return files


FILES = web.AppKey("console_files", dict[str, tuple[bytes, str]])


def _file(request: web.Request, name: str) -> web.Response:
    found = request.app[FILES].get(name)
    if found is None:
        raise web.HTTPNotFound()
    body, content_type = found
    charset = "utf-8" if Path(name).suffix in _TEXT else None
    return web.Response(body=body, content_type=content_type, charset=charset, headers=SECURITY_HEADERS)


def wants_html(request: web.Request) -> bool:
    return "text/html" in request.headers.get("Accept", "")


async def root(request: web.Request) -> web.StreamResponse:
    if wants_html(request):
        raise web.HTTPFound(PAGE, headers=SECURITY_HEADERS)
    return await ollama_root(request)


async def to_page(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(PAGE, headers=SECURITY_HEADERS)


async def page(request: web.Request) -> web.Response:
    return _file(request, "index.html")


async def asset(request: web.Request) -> web.Response:
    return _file(request, request.match_info["name"])


async def servables(request: web.Request) -> web.Response:
    """The picker's list: every servable (failed and loading ones too), with what it serves."""
    settings = request.app[SETTINGS]
    listed = [
        {"name": s.name, "served_names": s.served_names(), "kind": kind_of(s), "state": s.state.value, "error": s.error}
        for s in request.app[SERVABLES]
    ]
    return web.json_response({"servables": listed, "trace": settings.trace, "metrics": settings.metrics_enable})


def install(app: web.Application, settings: Settings) -> None:
    """The console's routes (before Ollama's, whose `/` then stays unregistered: ours answers it)."""
    if not settings.console:
        return
    app[FILES] = load_files()
    app.router.add_get("/", root)
    app.router.add_get("/console", to_page)
    app.router.add_get(PAGE, page)
    app.router.add_get(STATIC_PREFIX + "{name}", asset)
    app.router.add_get("/console/api/servables", servables)

"""KServe-style health: live as soon as the process serves HTTP, ready once every servable loaded."""

from __future__ import annotations

from aiohttp import web

from serving.state import SERVABLES


async def live(request: web.Request) -> web.Response:
    return web.Response(status=200)


async def ready(request: web.Request) -> web.Response:
    return web.Response(status=200 if request.app[SERVABLES].ready else 503)


async def debug_stats(request: web.Request) -> web.Response:
    """Servable states and engine figures (in-flight requests, last step time, cancellations)."""
    return web.json_response({"servables": {s.name: s.stats() for s in request.app[SERVABLES]}})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v2/health/live", live)
    app.router.add_get("/v2/health/ready", ready)
    app.router.add_get("/debug/stats", debug_stats)

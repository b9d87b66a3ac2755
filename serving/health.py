"""KServe-style health: live as soon as the process serves HTTP, ready once every servable loaded."""

from __future__ import annotations

from aiohttp import web

from serving.state import SERVABLES


async def live(request: web.Request) -> web.Response:
    return web.Response(status=200)


async def ready(request: web.Request) -> web.Response:
    return web.Response(status=200 if request.app[SERVABLES].ready else 503)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v2/health/live", live)
    app.router.add_get("/v2/health/ready", ready)

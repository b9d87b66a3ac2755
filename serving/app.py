"""The aiohttp application factory, used by the CLI and by tests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from graphs.errors import NotFoundError, OvserveError
from serving import admission, cors, guards, health, loop_lag, metrics, openai_routes, openapi, reload, trace_routes
from serving.auth import auth_middleware
from serving.errors import MethodNotAllowedError, RequestTooLargeError, error_response, internal_error
from serving.kserve import rest as kserve_rest
from serving.servable import ServableManager
from serving.settings import Settings
from serving.state import SERVABLES, SETTINGS

log = logging.getLogger("ovserve.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves in OpenAI's shape; anything unexpected is a logged 500."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return error_response(NotFoundError(f"no route for {request.method} {request.path}"))
    except web.HTTPMethodNotAllowed as exc:
        return error_response(
            MethodNotAllowedError(f"{request.method} is not allowed on {request.path}; use {', '.join(sorted(exc.allowed_methods))}")
        )
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SETTINGS].max_body_bytes
        return error_response(RequestTooLargeError(f"request body is larger than the limit of {limit} bytes"))
    except web.HTTPException:
        raise
    except OvserveError as exc:
        return error_response(exc)
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(internal_error())


@web.middleware
async def content_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """--log_request_content with --log_level DEBUG: request bodies (prompts) go to the log.
    Never otherwise: prompts are users' data."""
    if request.can_read_body:
        body = await request.read()  # aiohttp keeps it for the handler
        log.debug("request %s %s: %s", request.method, request.path, body.decode("utf-8", "replace"))
    return await handler(request)


def create_app(settings: Settings, servables: ServableManager) -> web.Application:
    """The REST application. Servables load in the background once it starts, so liveness
    answers at once and readiness turns true when every servable has loaded."""
    middlewares: list[Middleware] = [errors_middleware, guards.media_type_middleware]  # 415 after auth, before the body is read
    if settings.log_request_content and settings.log_level == "DEBUG":
        middlewares.append(content_log_middleware)
    if settings.api_key:
        middlewares.insert(0, auth_middleware(settings.api_key, settings.api_key_open_paths))
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=middlewares)
    app[SETTINGS] = settings
    app[SERVABLES] = servables
    admission.install(app, settings.max_concurrent_requests, settings.max_queued_requests, settings.request_timeout)

    async def servables_ctx(app: web.Application) -> AsyncIterator[None]:
        loading = asyncio.get_running_loop().create_task(servables.load_all(), name="load-servables")
        yield
        loading.cancel()
        await asyncio.gather(loading, return_exceptions=True)
        await servables.aclose()

    app.cleanup_ctx.append(servables_ctx)
    openai_routes.add_routes(app)
    health.add_routes(app)
    kserve_rest.add_routes(app)  # KServe v2: /v2, /v2/models/...
    openapi.install(app)  # GET /openapi.json
    loop_lag.install(app)
    trace_routes.install(app, settings)  # GET /debug/traces; with --trace, which requests are traced
    reload.install(app, settings, servables)
    metrics.install(app)
    cors.install(app, settings)  # preflights are answered before auth and routing
    # outermost: a foreign Host (DNS rebinding) gets nothing else
    app.middlewares.insert(0, guards.host_middleware(guards.HostPolicy.of(settings.allowed_hosts, settings.rest_bind_address)))
    return app

"""The REST middlewares, and their order, written once (`chain`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from graphs.errors import NotFoundError, OvserveError
from serving import console_routes, cors, guards, metrics, trace_routes
from serving.auth import auth_middleware
from serving.errors import MethodNotAllowedError, RequestTooLargeError, error_response, internal_error
from serving.frontend import CONTEXT, FrontEndCore
from serving.settings import Settings
from serving.state import SETTINGS

log = logging.getLogger("ovserve.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def chain(settings: Settings, core: FrontEndCore) -> list[Middleware]:
    """Every REST request passes these, outermost first."""
    middlewares = [
        # A foreign Host (DNS rebinding) gets nothing else.
        guards.host_middleware(guards.HostPolicy.of(settings.allowed_hosts, settings.rest_bind_address)),
        # Preflights are answered before auth and routing; a cross-origin POST not allowed is refused.
        cors.middleware(cors.CorsPolicy.from_settings(settings)),
        context_middleware(core),  # the request's context: deadline, telemetry, trace
    ]
    if core.metrics is not None:
        middlewares.append(metrics.metrics_middleware)  # counts what auth refuses too
    if settings.api_key:
        console_prefixes, console_exact = console_routes.open_paths(settings)  # the page opens without a key
        middlewares.append(auth_middleware(settings.api_key, settings.api_key_open_paths + console_prefixes, console_exact))
    middlewares += [errors_middleware, guards.media_type_middleware]  # 415 after auth, before the body is read
    if settings.log_request_content and settings.log_level == "DEBUG":
        middlewares.append(content_log_middleware)
    return middlewares


def context_middleware(core: FrontEndCore) -> Middleware:
    @web.middleware
    async def attach(request: web.Request, handler: Handler) -> web.StreamResponse:
        asked = core.traces is not None and trace_routes.asked(request.headers.get(trace_routes.TRACE_HEADER))
        resource = request.match_info.route.resource  # None when no route matched
        route = f"{request.method} {resource.canonical if resource is not None else request.path}"
        request[CONTEXT] = core.context(asked, route)
        return await handler(request)

    return attach


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves in OpenAI's shape (or that of the front end registered for the path:
    serving.guards.ERROR_SHAPES); anything unexpected is a logged 500."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return guards.front_end_error(request, NotFoundError(f"no route for {request.method} {request.path}"))
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        return guards.front_end_error(request, MethodNotAllowedError(f"{request.method} is not allowed on {request.path}; use {allowed}"))
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SETTINGS].max_body_bytes
        return guards.front_end_error(request, RequestTooLargeError(f"request body is larger than the limit of {limit} bytes"))
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

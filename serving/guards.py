"""Checks on a request's headers before its body is read: the Host allow-list (against DNS
rebinding) and the media type of POST bodies (a body a web page can send without a CORS
preflight, such as `text/plain`, is never parsed as JSON).

Host: `--allowed_hosts` names the hosts admitted (comma-separated, port ignored, `*` for any, a
leading `.` for a domain and its subdomains). By default a server bound to a loopback address
admits only loopback names (`localhost`, `*.localhost`, 127.x.x.x, `[::1]`), as Ollama does; a
server bound to anything else admits any host (it is reachable by address anyway, and
Kubernetes probes send the pod IP). Loopback names are always admitted: no page can make them
point elsewhere. A refused Host is a 403 (Ollama, Vite and Jupyter answer 403 too).

Media type: a POST with a body must send `Content-Type: application/json` (parameters such as
charset allowed), else 415. KServe inference also takes `application/octet-stream` and no
Content-Type at all, which tritonclient sends (the aio and the plain client respectively); the
audio routes take `multipart/form-data` (their file upload), and only that. A
POST without a body (`/v1/config/reload`) needs none; cross-origin POSTs are refused by
serving.cors whatever their type.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

from aiohttp import web
from aiohttp.typedefs import Middleware

from graphs.errors import OvserveError
from serving import errors
from serving.cli_types import comma_list

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
JSON = "application/json"
_KSERVE_INFER_TYPES = frozenset({JSON, "application/octet-stream", ""})
FORM = "multipart/form-data"
_FORM_TYPES = frozenset({FORM})
# OpenAI routes whose bodies are forms with a file (serving/audio_routes.py, serving/image_routes.py)
FORM_PATHS = frozenset(
    f"{prefix}/{what}" for prefix in ("/v3", "/v1") for what in ("audio/transcriptions", "audio/translations", "images/edits")
)
_SHOWN = 64  # characters of a refused header value quoted back


class ForbiddenError(OvserveError):
    kind = "forbidden_error"
    status = 403


class UnsupportedMediaTypeError(OvserveError):
    kind = "invalid_request_error"
    status = 415


# Front ends with their own error shape register it for their path prefixes (Anthropic's
# /v1/messages, Ollama's /api, Cohere's rerank paths, llama.cpp's /props …), so middleware errors
# on their paths (key, media type, Host, 404/405, 413) take it too.
ERROR_SHAPES = web.AppKey("error_shapes", dict[str, Callable[[OvserveError], object]])


def register_shape(app: web.Application, shape: Callable[[OvserveError], object], *prefixes: str) -> None:
    """`shape` for the errors on `prefixes` (each path itself and below it)."""
    shapes = app.setdefault(ERROR_SHAPES, {})
    for prefix in prefixes:
        shapes[prefix] = shape


def _registered_shape(request: web.Request) -> Callable[[OvserveError], object] | None:
    for prefix, shape in request.app.get(ERROR_SHAPES, {}).items():
        if request.path == prefix or request.path.startswith(prefix + "/"):
            return shape
    return None


def front_end_error(request: web.Request, error: OvserveError) -> web.Response:
    """The error in the shape of the front end registered for the path, else OpenAI's."""
    shape = _registered_shape(request)
    return errors.error_response(error) if shape is None else errors.error_response(error, shape)


def api_error(request: web.Request, error: OvserveError) -> web.Response:
    """The error in the shape of the API the path belongs to: a registered front end's (Cohere's
    /v2/rerank is not KServe's), else KServe's on /v2, else OpenAI's."""
    if _registered_shape(request) is None and (request.path == "/v2" or request.path.startswith("/v2/")):
        return errors.error_response(error, lambda e: {"error": e.message})
    return front_end_error(request, error)


def _shown(value: str) -> str:
    return repr(value[:_SHOWN] + ("…" if len(value) > _SHOWN else ""))


# -- Host ------------------------------------------------------------------------------------


def host_name(host: str) -> str:
    """The name of a Host header value: port and IPv6 brackets dropped, lower case, no final dot."""
    host = host.strip().lower()
    if host.startswith("["):
        name = host[1 : host.find("]")] if "]" in host else host[1:]
    else:
        name, colon, port = host.rpartition(":")
        if not colon or not port.isdigit() or ":" in name:
            name = host
    return name.rstrip(".")


@functools.lru_cache(maxsize=256)  # ip_address() takes microseconds; clients send few distinct names
def is_loopback_name(name: str) -> bool:
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """Which Host header values are admitted; `any_host`: no check at all."""

    any_host: bool
    names: frozenset[str] = frozenset()

    @classmethod
    def of(cls, allowed_hosts: str, bind_address: str) -> HostPolicy:
        names = frozenset(host_name(h) for h in comma_list(allowed_hosts))
        if "*" in names or (not names and not is_loopback_name(host_name(bind_address))):
            return cls(any_host=True)
        return cls(any_host=False, names=names)

    def admits(self, host: str) -> bool:
        if self.any_host:
            return True
        name = host_name(host)
        if is_loopback_name(name) or name in self.names:
            return True
        return any(entry.startswith(".") and (name == entry[1:] or name.endswith(entry)) for entry in self.names)


def host_middleware(policy: HostPolicy) -> Middleware:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host")
        if host is not None and not policy.admits(host):  # no Host: not a browser (HTTP/1.0)
            message = (
                f"host {_shown(host)} is not allowed: this server answers only to the names in --allowed_hosts "
                "(by default, when bound to loopback, localhost names only)"
            )
            return api_error(request, ForbiddenError(message, code="host_not_allowed"))
        return await handler(request)

    return cast(Middleware, check)


# -- media type ------------------------------------------------------------------------------


def media_type(content_type: str | None) -> str:
    """`application/json; charset=utf-8` -> `application/json`; absent -> ``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def accepted_types(path: str) -> frozenset[str]:
    if path.startswith("/v2/models/") and path.endswith("/infer"):
        return _KSERVE_INFER_TYPES
    if path in FORM_PATHS:
        return _FORM_TYPES
    return frozenset({JSON})


@web.middleware
async def media_type_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method == "POST" and request.body_exists:
        given = request.headers.get("Content-Type")
        if media_type(given) not in accepted_types(request.path):
            what = f"Content-Type {_shown(given)}" if given else "no Content-Type"
            wanted = f"as {FORM} (a file upload)" if request.path in FORM_PATHS else f"as JSON with Content-Type: {JSON}"
            message = f"request body sent with {what}; send it {wanted}"
            return api_error(request, UnsupportedMediaTypeError(message, code="unsupported_media_type"))
    return await handler(request)

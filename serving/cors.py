"""CORS for browser clients, with OVMS's flags: --allowed_origins, --allowed_methods,
--allowed_headers (comma-separated, `*` for any) and --allow_credentials.

Off unless --allowed_origins names origins (`*` only when given explicitly): a web page the
user opens must not be able to read answers from a server on their machine. A POST that
carries an `Origin` not allowed is refused (403) before it runs: browsers send some
cross-origin POSTs without a preflight (no Content-Type, or a body-less one such as
`/v1/config/reload`), and their side effects would happen even though the page cannot read
the answer. A POST from the server's own origin (its web console) is not cross-origin.

Preflight requests (OPTIONS with Access-Control-Request-Method) are answered here, before
routing and the API-key check (browsers send no credentials on a preflight). Every other
response to an allowed origin gets its headers in `on_response_prepare`, which also covers
streamed (SSE) responses whose headers go out before the handler returns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

from aiohttp import web
from aiohttp.typedefs import Middleware

from serving.cli_types import comma_list
from serving.guards import ForbiddenError, api_error
from serving.settings import Settings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PREFLIGHT_MAX_AGE_S = 600
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # no side effects: a foreign origin may send them


def _items(text: str) -> frozenset[str]:
    return frozenset(comma_list(text))


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    origins: frozenset[str]
    methods: frozenset[str]
    headers: frozenset[str]
    credentials: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> CorsPolicy:
        return cls(
            _items(settings.allowed_origins),
            frozenset(m.upper() for m in _items(settings.allowed_methods)),
            frozenset(h.lower() for h in _items(settings.allowed_headers)),
            settings.allow_credentials,
        )

    def allows_origin(self, origin: str) -> bool:
        return "*" in self.origins or origin in self.origins

    def allows_method(self, method: str) -> bool:
        return "*" in self.methods or method.upper() in self.methods

    def allows_headers(self, requested: frozenset[str]) -> bool:
        return "*" in self.headers or requested <= self.headers

    def origin_headers(self, origin: str) -> dict[str, str]:
        # With credentials the origin must be named, never `*` (the Fetch standard).
        wildcard = "*" in self.origins and not self.credentials
        headers = {"Access-Control-Allow-Origin": "*" if wildcard else origin, "Access-Control-Expose-Headers": EXPOSED}
        if not wildcard:
            headers["Vary"] = "Origin"
        if self.credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        return headers


# Response headers a browser page may read (beyond the CORS-safelisted ones): why fields were
# ignored, the trace id, and when to retry after a 429/503.
EXPOSED = "X-Ovserve-Ignored-Fields, X-Ovserve-Trace-Id, Retry-After"


def same_origin(request: web.Request, origin: str) -> bool:
    """A request from a page this server served (the web console): its Origin is this server's
    own (the Host guard has already refused foreign Host names), or the browser says so in
    Sec-Fetch-Site (behind a proxy that changes the scheme). Neither can be set by a page's script."""
    return origin == f"{request.scheme}://{request.host}" or request.headers.get("Sec-Fetch-Site") == "same-origin"


def middleware(policy: CorsPolicy) -> Middleware:
    """Answers preflights and refuses cross-origin POSTs from origins not allowed (see the
    module docstring); serving.middleware places it."""

    @web.middleware
    async def preflight(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        wanted = request.headers.get("Access-Control-Request-Method")
        foreign = origin if origin is not None and not same_origin(request, origin) else None
        if foreign is not None and request.method not in _SAFE_METHODS and not policy.allows_origin(foreign):
            message = f"cross-origin {request.method} from {foreign[:64]!r} refused: allow the origin with --allowed_origins"
            return api_error(request, ForbiddenError(message, code="origin_not_allowed"))
        if request.method != "OPTIONS" or origin is None or wanted is None:
            return await handler(request)
        requested = _items(request.headers.get("Access-Control-Request-Headers", "").lower())
        if not (policy.allows_origin(origin) and policy.allows_method(wanted) and policy.allows_headers(requested)):
            message = "CORS preflight refused: origin, method or headers not allowed (--allowed_origins, _methods, _headers)"
            return api_error(request, ForbiddenError(message, code="cors_preflight_refused"))
        headers = {
            **policy.origin_headers(origin),
            "Access-Control-Allow-Methods": wanted.upper(),
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
        }
        if requested:
            headers["Access-Control-Allow-Headers"] = ", ".join(sorted(requested))
        return web.Response(status=204, headers=headers)

    return cast(Middleware, preflight)


def install(app: web.Application, policy: CorsPolicy) -> None:
    """Every response to an allowed origin gets its CORS headers as its headers go out."""

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if origin is not None and policy.allows_origin(origin) and "Access-Control-Allow-Origin" not in response.headers:
            response.headers.update(policy.origin_headers(origin))

    app.on_response_prepare.append(add_headers)

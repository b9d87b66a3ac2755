"""API keys: with `--api_key_file` (or the API_KEY environment variable), every request needs
`Authorization: Bearer <key>` except under the open paths (`--api_key_open_paths`, by default
health, metrics and the OpenAPI document, so probes and scrapers need no key). Keys are
compared in constant time and never logged.

The header is parsed as RFC 7235 says: the scheme is case-insensitive and any whitespace may
separate it from the key. Parsing never raises: aiohttp hands non-UTF-8 header bytes over as
surrogate escapes, which are compared as the bytes they stand for (a 401, not a 500).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import cast

from aiohttp import web
from aiohttp.typedefs import Middleware

from graphs.errors import OvserveError
from serving import guards

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_SCHEME = "bearer"


class AuthenticationError(OvserveError):
    kind = "authentication_error"
    status = 401


def load_api_key(api_key_file: Path | None) -> str | None:
    """The key from the file (first line, trimmed), else from API_KEY; None: no auth."""
    if api_key_file is not None:
        try:
            key = api_key_file.read_text(encoding="utf-8").strip().splitlines()[0].strip()
        except (OSError, IndexError):
            raise ValueError(f"--api_key_file {api_key_file}: cannot read a key from it") from None
        if not key:
            raise ValueError(f"--api_key_file {api_key_file} is empty")
        return key
    return os.environ.get("API_KEY") or None


def _bytes(text: str) -> bytes:
    # surrogateescape gives back the bytes a non-UTF-8 header arrived with; never raises
    return text.encode("utf-8", "surrogateescape")


def bearer_token(given: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` value (scheme in any case, any
    whitespace around), or None when the value is not a Bearer credential."""
    parts = given.split(None, 1)
    if len(parts) != 2 or not parts[0].isascii() or parts[0].lower() != _SCHEME:
        return None
    return parts[1].strip()


def key_matches(given: str, api_key: str) -> bool:
    """`given` is an Authorization value; constant-time compare (gRPC metadata uses it too)."""
    token = bearer_token(given)
    # compare even without a token, so a malformed header takes the time of a wrong key
    return hmac.compare_digest(_bytes(token if token is not None else ""), _bytes(api_key)) and token is not None


def is_open_path(path: str, open_paths: tuple[str, ...]) -> bool:
    """Whether `path` is one of `open_paths` or below one, by whole segments: `/v2/health`
    (or `/v2/health/`) opens `/v2/health/live` but not `/v2/healthy`. Paths with `.` or `..`
    segments are never open (routing and this check must not disagree on where they lead)."""
    segments = path.split("/")
    if "." in segments or ".." in segments:
        return False
    for entry in open_paths:
        prefix = entry.rstrip("/")
        if path == prefix or path.startswith(prefix + "/"):
            return True
    return False


def missing_key_error(given: str) -> AuthenticationError:
    message = "missing or wrong API key: send Authorization: Bearer <key>" if given else "missing API key"
    return AuthenticationError(message, code="invalid_api_key")


def auth_middleware(api_key: str, open_paths: tuple[str, ...], open_exact: frozenset[str] = frozenset()) -> Middleware:
    """`open_exact`: paths open themselves only, not what lies below them (the console's page)."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        is_open = request.path in open_exact or is_open_path(request.path, open_paths)
        if request.method != "OPTIONS" and not is_open:  # CORS preflights carry no key
            given = request.headers.get("Authorization", "")
            if not given and "x-api-key" in request.headers:  # Anthropic's header (its SDK sends it)
                given = "Bearer " + request.headers["x-api-key"]
            if not key_matches(given, api_key):
                return guards.front_end_error(request, missing_key_error(given))
        return await handler(request)

    return cast(Middleware, check)

"""API keys: with `--api_key_file` (or the API_KEY environment variable), every request needs
`Authorization: Bearer <key>` except under the open path prefixes (`--api_key_open_paths`, by
default health and metrics, so probes and scrapers need no key). Keys are compared in
constant time and never logged."""

from __future__ import annotations

import hmac
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import cast

from aiohttp import web
from aiohttp.typedefs import Middleware

from graphs.errors import OvserveError
from serving.errors import error_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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


def key_matches(given: str, api_key: str) -> bool:
    """`given` is an Authorization value; constant-time compare (gRPC metadata uses it too)."""
    return hmac.compare_digest(given.encode(), ("Bearer " + api_key).encode())


def missing_key_error(given: str) -> AuthenticationError:
    message = "missing or wrong API key: send Authorization: Bearer <key>" if given else "missing API key"
    return AuthenticationError(message, code="invalid_api_key")


def auth_middleware(api_key: str, open_paths: tuple[str, ...]) -> Middleware:

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "OPTIONS" and not request.path.startswith(open_paths):  # CORS preflights carry no key
            given = request.headers.get("Authorization", "")
            if not key_matches(given, api_key):
                return error_response(missing_key_error(given))
        return await handler(request)

    return cast(Middleware, check)

"""API keys: with `--api_key_file` (or the API_KEY environment variable), every /v3 and /v1
request needs `Authorization: Bearer <key>`. Health (/v2/health/*) and metrics stay open.
Keys are compared in constant time and never logged."""

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

PROTECTED_PREFIXES = ("/v3/", "/v1/", "/debug/")

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


def auth_middleware(api_key: str) -> Middleware:
    expected = ("Bearer " + api_key).encode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(PROTECTED_PREFIXES):
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                error = AuthenticationError(
                    "missing or wrong API key: send Authorization: Bearer <key>" if given else "missing API key", code="invalid_api_key"
                )
                return error_response(error)
        return await handler(request)

    return cast(Middleware, check)

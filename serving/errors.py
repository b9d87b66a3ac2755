"""The one place that renders errors: OpenAI's `{"error": {...}}` shape with an honest status."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
from aiohttp import web

from graphs.errors import (
    EngineError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    OvserveError,
    UnavailableError,
)

_STATUS: dict[type[OvserveError], int] = {
    InvalidRequestError: 400,
    NotFoundError: 404,
    OverloadedError: 503,
    UnavailableError: 503,
    EngineError: 500,
}


class RequestTooLargeError(InvalidRequestError):
    status = 413


class MethodNotAllowedError(InvalidRequestError):
    status = 405


_json_decode = msgspec.json.Decoder().decode


def json_object(raw: bytes, what: str) -> dict[str, object]:
    """`raw` parsed as one JSON object; a 400 naming `what` otherwise."""
    if not raw:
        raise InvalidRequestError(f"{what} is empty; expected a JSON object")
    try:
        value = _json_decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:  # msgspec stops at Python's recursion limit (about 1000 levels)
        raise InvalidRequestError(f"{what} is nested too deeply") from None
    if not isinstance(value, dict):
        raise InvalidRequestError(f"{what} must be a JSON object")
    return value


def status_of(error: OvserveError) -> int:
    explicit = getattr(error, "status", None)
    if isinstance(explicit, int):
        return explicit
    for cls in type(error).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 500


def error_body(error: OvserveError) -> dict[str, object]:
    return {"error": {"message": error.message, "type": error.kind, "param": error.param, "code": error.code}}


def error_response(error: OvserveError, body: Callable[[OvserveError], object] = error_body) -> web.Response:
    """The error with its honest status (and `Retry-After` where a retry may succeed), in
    OpenAI's shape by default (KServe passes its own `{"error": message}`)."""
    status = status_of(error)
    headers = {"Retry-After": "1"} if status in (429, 503) else None
    return web.Response(status=status, body=msgspec.json.encode(body(error)), content_type="application/json", headers=headers)


def internal_error() -> OvserveError:
    return OvserveError("internal server error; the server log has the details")

"""A `multipart/form-data` body read with aiohttp's multipart reader, under --max_body_bytes: text
fields as `str`, file parts as `UploadedFile`, repeated names (`image`, `image[]`) as lists.

aiohttp's `request.post()` would spool files to disk; here every part is read in chunks into
memory and the whole body counted against the limit as it arrives (413 past it, before the rest
is read). A body that is not multipart is a 415; a broken one a 400.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.hdrs import CONTENT_DISPOSITION
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.multipart import content_disposition_filename, parse_content_disposition

from calculators.image.request import UploadedFile
from graphs.errors import InvalidRequestError
from serving.errors import RequestTooLargeError
from serving.guards import UnsupportedMediaTypeError
from serving.state import SETTINGS

MAX_PARTS = 64  # fields and files together: a form with more is not a client of ours
_CHUNK = 64 * 1024


async def read_form(request: web.Request) -> dict[str, Any]:
    """The form's fields by name (`name[]` is `name`; a repeated name gives a list)."""
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaTypeError(
            f"expected a multipart/form-data body, got {request.content_type or 'none'}", code="unsupported_media_type"
        )
    limit = request.app[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError) as exc:
        raise InvalidRequestError(f"the multipart body cannot be read: {exc}") from None
    form: dict[str, Any] = {}
    total = parts = 0
    while True:
        try:
            part = await reader.next()
        except _MALFORMED as exc:
            raise InvalidRequestError(f"the multipart body is malformed: {part_error(exc)}") from None
        if part is None:
            return form
        if not isinstance(part, BodyPartReader):
            raise InvalidRequestError("nested multipart bodies are not accepted")
        parts += 1
        if parts > MAX_PARTS:
            raise InvalidRequestError(f"the form has more than {MAX_PARTS} parts")
        name, filename = part_names(part)
        if not name:
            raise InvalidRequestError("a form part has no name")
        data = bytearray()
        while chunk := await _chunk(part):
            total += len(chunk)
            if total > limit:
                raise _too_large(limit)
            data += chunk
        value: Any = _field(name, filename, part, bytes(data))
        key = name.removesuffix("[]")
        if key in form:
            previous = form[key]
            form[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            form[key] = [value] if name.endswith("[]") else value


async def _chunk(part: BodyPartReader) -> bytes:
    try:
        return await part.read_chunk(_CHUNK)
    except _MALFORMED as exc:
        raise InvalidRequestError(f"the multipart body is malformed: {part_error(exc)}") from None


# What aiohttp's multipart reader raises on a broken body: ValueError and friends for a malformed
# part, BadHttpMessage for a part header with control characters or a line over its limit.
_MALFORMED = (ValueError, AssertionError, RuntimeError, BadHttpMessage)


def part_error(exc: Exception) -> str:
    """aiohttp's reason for refusing a part, without the body bytes a too-long line's message quotes."""
    if isinstance(exc, LineTooLong):
        return "a line is too long where a boundary is expected"
    return exc.message if isinstance(exc, BadHttpMessage) else str(exc)


def part_names(part: BodyPartReader) -> tuple[str | None, str | None]:
    """The part's `name` and `filename`, as aiohttp's `part.name` and `part.filename` give them,
    from one parse of its Content-Disposition (each of those properties parses it again)."""
    return _disposition(part.headers.get(CONTENT_DISPOSITION))


@lru_cache(maxsize=256)
def _disposition(header: str | None) -> tuple[str | None, str | None]:
    # aiohttp's parser re-escapes its 128-character class on every call (~25 us); a client
    # repeats the same few headers, so most parts are a cache hit.
    _, params = parse_content_disposition(header)
    return content_disposition_filename(params, "name"), content_disposition_filename(params, "filename")


def _field(name: str, filename: str | None, part: BodyPartReader, data: bytes) -> str | UploadedFile:
    if filename is not None:
        return UploadedFile(filename, part.headers.get("Content-Type", "application/octet-stream"), data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequestError(f"form field {name!r} is not UTF-8 text", param=name.removesuffix("[]")) from None


def _too_large(limit: int) -> RequestTooLargeError:
    return RequestTooLargeError(f"request body is larger than the limit of {limit} bytes")

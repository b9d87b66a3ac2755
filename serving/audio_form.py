"""Reading OpenAI's audio forms (multipart/form-data) into a graph request body, within limits.

aiohttp's --max_body_bytes bound does not apply to a multipart read, so the bounds are here:
the `file` part at most --max_audio_bytes (413), each text field at most 64 KiB and at most 64
parts (400). Text fields become strings, repeated ones (and `name[]` ones, as the OpenAI SDK
sends lists) lists of strings; the file an `AudioUpload` carrying --max_audio_seconds.
"""

from __future__ import annotations

from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import BadHttpMessage

from calculators.audio.protocol import AudioUpload
from graphs.errors import InvalidRequestError
from serving.errors import RequestTooLargeError
from serving.multipart_form import part_error, part_names

MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 64
MULTIPART = "multipart/form-data"


async def _read_part(part: BodyPartReader, limit: int, too_large: Exception) -> bytes:
    chunks, size = [], 0
    while chunk := await part.read_chunk(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def read_audio_form(request: web.Request, max_audio_bytes: int, max_audio_seconds: float) -> dict[str, Any]:
    """The form's fields by name; 400s for a body that is not such a form, 413 for a too-large file."""
    if request.content_type != MULTIPART:
        raise InvalidRequestError(f"send the audio as {MULTIPART} (fields: file, model, …)", param="file")
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError) as exc:
        raise InvalidRequestError(f"unreadable {MULTIPART} body: {exc}") from None
    body: dict[str, Any] = {}
    parts = 0
    try:
        while (part := await reader.next()) is not None:
            parts += 1
            if parts > MAX_PARTS or not isinstance(part, BodyPartReader):
                raise InvalidRequestError(f"a form of at most {MAX_PARTS} plain parts is expected")
            name, filename = part_names(part)
            name = name or ""
            if name == "file":
                message = f"the audio file is larger than this server's limit of {max_audio_bytes} bytes (--max_audio_bytes)"
                too_large = RequestTooLargeError(message, param="file")
                data = await _read_part(part, max_audio_bytes, too_large)
                body["file"] = AudioUpload(data, filename or "", part.headers.get("Content-Type", ""), max_audio_seconds)
                continue
            over = InvalidRequestError(f"field {name!r} is over {MAX_FIELD_BYTES} bytes", param=name)
            raw = await _read_part(part, MAX_FIELD_BYTES, over)
            try:
                value = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidRequestError(f"field {name!r} is not UTF-8 text", param=name) from None
            if name.endswith("[]") or name in body:
                previous = body.get(name, [])
                body[name] = [*(previous if isinstance(previous, list) else [previous]), value]
            else:
                body[name] = value
    except (ValueError, BadHttpMessage) as exc:  # aiohttp: a malformed part, a part header with control characters, a too-long line
        raise InvalidRequestError(f"unreadable {MULTIPART} body: {part_error(exc)}") from None
    return body

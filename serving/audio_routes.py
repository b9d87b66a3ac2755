"""The OpenAI audio front end: POST /v3/audio/transcriptions and /v3/audio/translations (and
/v1), over a servable whose graph is OVMS's speech-to-text one (calculators/audio).

The form is read within the audio limits (serving/audio_form.py) after an admission slot is
taken, the graph started through the front-end core, and its one answer written as JSON or text,
or its events as SSE (`stream: true`). A client that goes away cancels the run, which stops
the engine at its next token.
"""

from __future__ import annotations

import asyncio
import logging

import msgspec
from aiohttp import web

from calculators.audio.formats import StreamEvent, TextAnswer
from calculators.audio.protocol import TRANSCRIPTIONS, TRANSLATIONS
from calculators.packets import Endpoint, ResponseBody
from graphs.errors import OvserveError
from serving.audio_form import read_audio_form
from serving.errors import error_body, error_response, internal_error
from serving.frontend import CONTEXT, CORE
from serving.state import SETTINGS

log = logging.getLogger("ovserve.http")
_json = msgspec.json.Encoder()
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
DONE = b"data: [DONE]\n\n"


def _event(event: dict[str, object]) -> bytes:
    return b"data: " + _json.encode(event) + b"\n\n"


async def _speech(request: web.Request, endpoint: Endpoint) -> web.StreamResponse:
    core, ctx = request.app[CORE], request[CONTEXT]
    settings = request.app[SETTINGS]
    async with core.admission.slot(ctx.deadline):
        try:
            body = await read_audio_form(request, settings.max_audio_bytes, settings.max_audio_seconds)
            servable = await core.resolve(ctx, body.get("model"))
            run = core.start(ctx, servable, endpoint, body)
        except OvserveError as exc:
            return error_response(exc)
        response: web.StreamResponse | None = None
        try:
            async with core.admission.within(ctx.deadline):
                async for out in run:
                    value = out.packet.value
                    if isinstance(value, ResponseBody):
                        return web.Response(body=_json.encode(value.body), content_type="application/json")
                    if isinstance(value, TextAnswer):
                        return web.Response(text=value.text, content_type=value.media_type)
                    if not isinstance(value, StreamEvent):
                        raise TypeError(f"unexpected graph output {type(value).__name__}")
                    if response is None:
                        response = web.StreamResponse(headers=_SSE_HEADERS)
                        await response.prepare(request)
                    await response.write(_event(value.event) + (DONE if value.last else b""))
            if response is None:
                raise RuntimeError(f"graph of {servable.name!r} produced no answer")
        except (ConnectionResetError, ConnectionError):
            log.debug("client went away; transcription cancelled")
            raise
        except Exception as exc:
            error = exc if isinstance(exc, OvserveError) else internal_error()
            if not isinstance(exc, OvserveError):
                log.exception("request to %s failed", servable.name)
            if response is None:
                return error_response(error)
            await response.write(_event(error_body(error)) + DONE)  # headers are gone: in-band, then the end
        finally:
            await asyncio.shield(servable.finish(run))
        await response.write_eof()
        return response


async def transcriptions(request: web.Request) -> web.StreamResponse:
    return await _speech(request, TRANSCRIPTIONS)


async def translations(request: web.Request) -> web.StreamResponse:
    return await _speech(request, TRANSLATIONS)


def add_routes(app: web.Application) -> None:
    for prefix in ("/v3", "/v1"):
        app.router.add_post(f"{prefix}/audio/transcriptions", transcriptions)
        app.router.add_post(f"{prefix}/audio/translations", translations)

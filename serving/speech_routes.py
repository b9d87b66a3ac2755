"""The text-to-speech front end: `POST /v3/audio/speech` (and `/v1`), OpenAI's create-speech JSON,
over a servable whose graph is OVMS's text-to-speech one (calculators/audio/speech_calculator.py).

A thin layer: the body is read, `input` checked against --max_speech_input_chars (a server
limit the graph cannot know), the model resolved and the graph run under admission (serving/
whole_answer.py); the audio is sent whole with its media type (audio/wav, audio/pcm, audio/flac,
audio/mpeg, audio/ogg) within --send_timeout. A client that hangs up cancels the run (the
engine's generation cannot be stopped: it ends, and its audio is dropped)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from calculators.audio.speech_encode import SpeechAudio
from calculators.audio.speech_protocol import SPEECH
from graphs.errors import InvalidRequestError
from serving.frontend import RequestContext, Sender, read_json_body
from serving.state import SETTINGS
from serving.whole_answer import whole_answer


class AudioAnswer(web.Response):
    """The whole audio; aiohttp writes it after the handler returned, within --send_timeout."""

    def __init__(self, audio: SpeechAudio, send: Sender) -> None:
        super().__init__(body=audio.data, content_type=audio.media_type)
        self._send = send

    async def write_eof(self, data: bytes = b"") -> None:
        await self._send(super().write_eof(data))


def check_input_length(body: dict[str, object], limit: int) -> None:
    text = body.get("input")
    if isinstance(text, str) and len(text) > limit:
        raise InvalidRequestError(f"input has {len(text)} characters; the limit is {limit} (--max_speech_input_chars)", param="input")


async def _read(request: web.Request) -> dict[str, Any]:
    body = await read_json_body(request)
    check_input_length(body, request.app[SETTINGS].max_speech_input_chars)
    return body


def _audio_answer(value: SpeechAudio, send: Sender, ctx: RequestContext) -> web.StreamResponse:
    return AudioAnswer(value, send)


async def speech(request: web.Request) -> web.StreamResponse:
    return await whole_answer(request, SPEECH, _read, SpeechAudio, _audio_answer)


def add_routes(app: web.Application) -> None:
    for prefix in ("/v3", "/v1"):
        app.router.add_post(f"{prefix}/audio/speech", speech)

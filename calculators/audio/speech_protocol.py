"""`POST /v3/audio/speech` (OpenAI's create-speech JSON body) as a validated `SynthesisRequest`.

OpenAI's fields: `model`, `input`, `voice`, `response_format`, `speed`, `instructions`,
`stream_format`; OVMS adds `language` (for multilingual models such as Kokoro). What the
engine cannot do is a 400 naming the field: `aac` (libsndfile has no AAC encoder), `instructions`
(a prompt for OpenAI's own voice model), `stream_format: "sse"` (the audio is sent whole, as
`stream_format: "audio"` asks). Fields nobody defines are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from calculators.audio.speech_encode import MEDIA_TYPES
from graphs.errors import InvalidRequestError

SPEECH: Final = "audio/speech"
FORMATS = tuple(MEDIA_TYPES)  # what the server encodes: wav, pcm, flac, mp3, opus
OPENAI_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")


@dataclass(frozen=True, slots=True)
class SynthesisRequest:
    model: str
    input: str
    voice: str | None  # None: the model's default voice
    response_format: str  # one of FORMATS
    speed: float
    language: str | None = None


def _string(body: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidRequestError(f"missing required field: {name}", param=name)
        return None
    if not isinstance(value, str):
        raise InvalidRequestError(f"invalid value for {name}: a string is expected", param=name)
    return value


def _speed(body: dict[str, Any]) -> float:
    value = body.get("speed", 1.0)
    if value is None:
        return 1.0
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:  # (NaN)
        raise InvalidRequestError("invalid value for speed: a number is expected", param="speed")
    return float(value)


def parse_speech_request(endpoint: str, body: dict[str, Any]) -> SynthesisRequest:
    """The body as a `SynthesisRequest`, or a 400 naming the field."""
    if endpoint != SPEECH:
        raise InvalidRequestError(f"this servable turns text into speech; it does not serve {endpoint}", param="model")
    model = _string(body, "model", required=True)
    text = _string(body, "input", required=True)
    if not text or not text.strip():
        raise InvalidRequestError("input is empty: give the text to speak", param="input")
    voice = _string(body, "voice")
    response_format = _string(body, "response_format") or "wav"
    if response_format not in FORMATS:
        known = "an OpenAI format this server does not encode" if response_format in OPENAI_FORMATS else "not an audio format"
        raise InvalidRequestError(
            f"response_format {response_format!r} is {known}; supported: {', '.join(FORMATS)}", param="response_format"
        )
    if _string(body, "instructions"):
        message = "instructions are not supported: the voice comes from the servable's speaker embeddings"
        raise InvalidRequestError(message, param="instructions")
    stream_format = _string(body, "stream_format")
    if stream_format not in (None, "audio"):
        message = f"stream_format {stream_format!r} is not supported; the audio is sent whole (audio)"
        raise InvalidRequestError(message, param="stream_format")
    return SynthesisRequest(
        model=model or "",
        input=text,
        voice=voice or None,
        response_format=response_format,
        speed=_speed(body),
        language=_string(body, "language") or None,
    )

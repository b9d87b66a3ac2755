"""/v3/audio/speech bodies: what is taken, and each refusal naming its field."""

from __future__ import annotations

from typing import Any

import pytest

from calculators.audio.speech_protocol import SPEECH, parse_speech_request
from graphs.errors import InvalidRequestError

BASE = {"model": "tts", "input": "hello"}


def test_defaults_and_fields() -> None:
    request = parse_speech_request(SPEECH, BASE)
    assert (request.input, request.voice, request.response_format, request.speed, request.language) == ("hello", None, "wav", 1.0, None)
    full = {**BASE, "voice": "alloy", "response_format": "pcm", "speed": 1, "language": "en-us", "stream_format": "audio", "x": 1}
    request = parse_speech_request(SPEECH, full)
    assert (request.voice, request.response_format, request.speed, request.language) == ("alloy", "pcm", 1.0, "en-us")


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"input": "hi"}, "model", "missing required field"),
        ({"model": "tts"}, "input", "missing required field"),
        ({**BASE, "input": ""}, "input", "empty"),
        ({**BASE, "input": "  \n"}, "input", "empty"),
        ({**BASE, "input": 3}, "input", "a string"),
        ({**BASE, "voice": {"id": "x"}}, "voice", "a string"),
        ({**BASE, "response_format": "aac"}, "response_format", "supported: wav, pcm, flac, mp3, opus"),
        ({**BASE, "response_format": "ogg"}, "response_format", "not an audio format"),
        ({**BASE, "speed": "fast"}, "speed", "a number"),
        ({**BASE, "speed": True}, "speed", "a number"),
        ({**BASE, "instructions": "whisper"}, "instructions", "not supported"),
        ({**BASE, "stream_format": "sse"}, "stream_format", "not supported"),
    ],
)
def test_refusals_name_the_field(body: dict[str, Any], param: str, words: str) -> None:
    with pytest.raises(InvalidRequestError, match=words) as caught:
        parse_speech_request(SPEECH, body)
    assert caught.value.param == param


def test_other_endpoints_are_refused() -> None:
    with pytest.raises(InvalidRequestError, match="not serve chat/completions"):
        parse_speech_request("chat/completions", BASE)

"""The audio forms' validation (calculators/audio/protocol.py): what reaches the engine, and the
400s naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from calculators.audio.protocol import TRANSCRIPTIONS, TRANSLATIONS, AudioUpload, parse_request
from graphs.errors import InvalidRequestError

UPLOAD = AudioUpload(b"RIFF", "a.wav", "audio/wav", 60.0)


def form(**fields: Any) -> dict[str, Any]:
    return {"model": "whisper", "file": UPLOAD, **fields}


def test_defaults() -> None:
    request = parse_request(TRANSCRIPTIONS, form())
    assert (request.task, request.response_format, request.temperature, request.stream) == ("transcribe", "json", 0.0, False)
    assert request.language is None and request.prompt is None and not request.segments and not request.words
    assert request.upload is UPLOAD


def test_form_strings_are_typed() -> None:
    request = parse_request(TRANSCRIPTIONS, form(temperature="0.4", stream="true", language="EN", prompt="numbers"))
    assert (request.temperature, request.stream, request.language, request.prompt) == (0.4, True, "en", "numbers")


def test_verbose_json_granularities() -> None:
    assert parse_request(TRANSCRIPTIONS, form(response_format="verbose_json")).segments
    words_only = parse_request(TRANSCRIPTIONS, form(response_format="verbose_json", **{"timestamp_granularities[]": "word"}))
    assert (words_only.segments, words_only.words) == (False, True)
    both = parse_request(TRANSCRIPTIONS, form(response_format="verbose_json", **{"timestamp_granularities[]": ["word", "segment"]}))
    assert (both.segments, both.words) == (True, True)


def test_translation_ignores_language_and_unknown_fields() -> None:
    request = parse_request(TRANSLATIONS, form(language="fr", chunking_strategy="auto", **{"include[]": ["logprobs"]}))
    assert (request.task, request.language) == ("translate", None)


@pytest.mark.parametrize(
    ("endpoint", "body", "param", "words"),
    [
        (TRANSCRIPTIONS, {"file": UPLOAD}, "model", "missing required field"),
        (TRANSCRIPTIONS, {"model": "whisper"}, "file", "missing required field"),
        (TRANSCRIPTIONS, form(file="not a file part"), "file", "multipart/form-data"),
        (TRANSCRIPTIONS, form(response_format="mp3"), "response_format", "invalid value"),
        (TRANSCRIPTIONS, form(temperature="hot"), "temperature", "invalid value"),
        (TRANSCRIPTIONS, form(temperature="1.5"), "temperature", "invalid value"),
        (TRANSCRIPTIONS, form(stream="maybe"), "stream", "invalid value"),
        (TRANSCRIPTIONS, form(language="english"), "language", "invalid value"),
        (TRANSCRIPTIONS, form(stream="true", response_format="srt"), "response_format", "cannot be streamed"),
        (TRANSCRIPTIONS, form(**{"timestamp_granularities[]": ["word"]}), "timestamp_granularities[]", "verbose_json"),
        (
            TRANSCRIPTIONS,
            form(response_format="verbose_json", **{"timestamp_granularities[]": ["char"]}),
            "timestamp_granularities[].0",
            "",
        ),
        ("embeddings", form(), "model", "not embeddings"),
    ],
)
def test_refusals(endpoint: str, body: dict[str, Any], param: str, words: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_request(endpoint, body)
    assert caught.value.param == param
    assert words in caught.value.message

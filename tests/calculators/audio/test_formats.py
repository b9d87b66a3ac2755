"""A transcript in OpenAI's response formats (calculators/audio/formats.py)."""

from __future__ import annotations

from calculators.audio.formats import TextAnswer, done_event, render
from calculators.audio.protocol import TRANSCRIPTIONS, TRANSLATIONS, AudioUpload, SpeechRequest, parse_request
from calculators.audio.resource import Span, Transcript

TRANSCRIPT = Transcript(
    " one two. three",
    "en",
    3725.5,
    segments=[Span(0.0, 1.08, " one two."), Span(3601.25, 3725.5, " three")],
    words=[Span(0.0, 0.2, " one"), Span(0.2, 0.38, " two."), Span(3601.25, 3602.0, " three")],
    tokens=5,
)


def request(endpoint: str = TRANSCRIPTIONS, /, **fields: object) -> SpeechRequest:
    return parse_request(endpoint, {"model": "w", "file": AudioUpload(b"x"), **fields})


def test_json_and_text() -> None:
    assert render(TRANSCRIPT, request()) == {"text": "one two. three", "usage": {"type": "duration", "seconds": 3725.5}}
    assert render(TRANSCRIPT, request(response_format="text")) == TextAnswer("one two. three\n")


def test_srt_and_vtt() -> None:
    srt = render(TRANSCRIPT, request(response_format="srt"))
    assert srt == TextAnswer("1\n00:00:00,000 --> 00:00:01,080\none two.\n\n2\n01:00:01,250 --> 01:02:05,500\nthree\n\n")
    vtt = render(TRANSCRIPT, request(response_format="vtt"))
    assert vtt == TextAnswer("WEBVTT\n\n00:00:00.000 --> 00:00:01.080\none two.\n\n01:00:01.250 --> 01:02:05.500\nthree\n\n", "text/vtt")


def test_verbose_json() -> None:
    body = render(TRANSCRIPT, request(response_format="verbose_json", **{"timestamp_granularities[]": ["word", "segment"]}))
    assert isinstance(body, dict)
    assert (body["task"], body["language"], body["duration"], body["text"]) == ("transcribe", "en", 3725.5, "one two. three")
    assert [(s["id"], s["start"], s["end"], s["text"]) for s in body["segments"]] == [
        (0, 0.0, 1.08, " one two."),
        (1, 3601.25, 3725.5, " three"),
    ]
    assert set(body["segments"][0]) >= {"seek", "tokens", "temperature", "avg_logprob", "compression_ratio", "no_speech_prob"}
    assert body["words"] == [
        {"word": "one", "start": 0.0, "end": 0.2},
        {"word": "two.", "start": 0.2, "end": 0.38},
        {"word": "three", "start": 3601.25, "end": 3602.0},
    ]
    words_only = render(TRANSCRIPT, request(response_format="verbose_json", **{"timestamp_granularities[]": "word"}))
    assert isinstance(words_only, dict) and "segments" not in words_only and len(words_only["words"]) == 3
    translated = render(TRANSCRIPT, request(TRANSLATIONS, response_format="verbose_json"))
    assert isinstance(translated, dict) and translated["task"] == "translate" and "words" not in translated


def test_no_segments_still_one_cue() -> None:
    silent = Transcript("", "en", 2.0)
    assert render(silent, request(response_format="srt")) == TextAnswer("1\n00:00:00,000 --> 00:00:02,000\n\n\n")


def test_done_event() -> None:
    assert done_event(TRANSCRIPT) == {
        "type": "transcript.text.done",
        "text": "one two. three",
        "usage": {"type": "tokens", "input_tokens": 0, "output_tokens": 5, "total_tokens": 5},
    }

"""A transcript in each of OpenAI's response formats: json, text, srt, vtt, verbose_json.

Whisper's text starts with a space; OpenAI's does not: texts are stripped. verbose_json's
segments carry what openvino-genai gives (start, end, text); the fields it does not give
(per-segment tokens, avg_logprob, no_speech_prob) are present for clients that read them, with
neutral values, and `compression_ratio` is computed from the text as Whisper does.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from calculators.audio.protocol import SpeechRequest
from calculators.audio.resource import Span, Transcript


@dataclass(frozen=True, slots=True)
class TextAnswer:
    """Graph output for the plain-text formats (text, srt, vtt): the front end sends it as is."""

    text: str
    media_type: str = "text/plain"


def _stamp(seconds: float, decimal: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def _segments(transcript: Transcript) -> list[Span]:
    # genai gives no chunks for audio without speech; a one-cue file still has its (empty) text
    return transcript.segments or [Span(0.0, transcript.duration, transcript.text)]


def srt(transcript: Transcript) -> str:
    cues = [
        f"{index}\n{_stamp(s.start, ',')} --> {_stamp(s.end, ',')}\n{s.text.strip()}\n"
        for index, s in enumerate(_segments(transcript), start=1)
    ]
    return "\n".join(cues) + "\n"


def vtt(transcript: Transcript) -> str:
    cues = [f"{_stamp(s.start, '.')} --> {_stamp(s.end, '.')}\n{s.text.strip()}\n" for s in _segments(transcript)]
    return "WEBVTT\n\n" + "\n".join(cues) + "\n"


def _compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return round(len(data) / len(zlib.compress(data)), 4) if data else 0.0


def _usage(transcript: Transcript) -> dict[str, Any]:
    return {"type": "duration", "seconds": round(transcript.duration, 3)}


def verbose_json(transcript: Transcript, request: SpeechRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "task": request.task,
        "language": transcript.language,
        "duration": round(transcript.duration, 3),
        "text": transcript.text.strip(),
    }
    if request.segments:
        body["segments"] = [
            {
                "id": index,
                "seek": 0,
                "start": round(s.start, 3),
                "end": round(s.end, 3),
                "text": s.text,
                "tokens": [],
                "temperature": request.temperature,
                "avg_logprob": 0.0,
                "compression_ratio": _compression_ratio(s.text),
                "no_speech_prob": 0.0,
            }
            for index, s in enumerate(transcript.segments)
        ]
    if request.words:
        body["words"] = [{"word": w.text.strip(), "start": round(w.start, 3), "end": round(w.end, 3)} for w in transcript.words]
    body["usage"] = _usage(transcript)
    return body


def render(transcript: Transcript, request: SpeechRequest) -> dict[str, Any] | TextAnswer:
    """A JSON object (json, verbose_json) or a TextAnswer (text, srt, vtt)."""
    fmt = request.response_format
    if fmt == "text":
        return TextAnswer(transcript.text.strip() + "\n")
    if fmt == "srt":
        return TextAnswer(srt(transcript))
    if fmt == "vtt":
        return TextAnswer(vtt(transcript), "text/vtt")
    if fmt == "verbose_json":
        return verbose_json(transcript, request)
    return {"text": transcript.text.strip(), "usage": _usage(transcript)}


def delta_event(piece: str) -> dict[str, Any]:
    return {"type": "transcript.text.delta", "delta": piece}


def done_event(transcript: Transcript) -> dict[str, Any]:
    tokens = transcript.tokens
    usage = {"type": "tokens", "input_tokens": 0, "output_tokens": tokens, "total_tokens": tokens}
    return {"type": "transcript.text.done", "text": transcript.text.strip(), "usage": usage}


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """Graph output of a streamed transcription, one per event: the front end sends each as an
    SSE `data:` line, and `data: [DONE]` after the last."""

    event: dict[str, Any]
    last: bool = False

"""The waveform as the bytes the client asked for, written by soundfile (libsndfile): a 16-bit
PCM WAV file, or the same samples raw (`pcm`: 16-bit little-endian, mono, at the model's rate,
as OpenAI's pcm). Samples are clipped to [-1, 1] first: libsndfile would wrap them around."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

MEDIA_TYPES = {"wav": "audio/wav", "pcm": "audio/pcm"}


@dataclass(frozen=True, slots=True)
class SpeechAudio:
    """Graph output `HTTP_RESPONSE_PAYLOAD` of the T2sCalculator: the encoded audio."""

    data: bytes
    media_type: str
    sample_rate: int
    samples: int


def encode_speech(waveform: np.ndarray, sample_rate: int, response_format: str) -> SpeechAudio:
    import soundfile

    samples = np.clip(np.asarray(waveform, dtype=np.float32).reshape(-1), -1.0, 1.0)
    buffer = io.BytesIO()
    if response_format == "wav":
        soundfile.write(buffer, samples, sample_rate, format="WAV", subtype="PCM_16")
    elif response_format == "pcm":
        soundfile.write(buffer, samples, sample_rate, format="RAW", subtype="PCM_16", endian="LITTLE")
    else:
        raise ValueError(f"unknown response_format {response_format!r}")
    return SpeechAudio(buffer.getvalue(), MEDIA_TYPES[response_format], sample_rate, len(samples))

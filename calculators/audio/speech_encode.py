"""The waveform as the bytes the client asked for, written by soundfile (libsndfile 1.2): a 16-bit
PCM WAV file; the same samples raw (`pcm`: 16-bit little-endian, mono, at the model's rate, as
OpenAI's pcm); FLAC (16-bit, lossless); MP3; or Opus in an Ogg file (OpenAI's `opus`). All at the
model's rate (libsndfile does not resample; Opus takes 8, 12, 16, 24 or 48 kHz). AAC is not
among libsndfile's formats. Samples are made 16-bit first, clipped (libsndfile would wrap them around)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

# response_format: (libsndfile format, subtype, media type)
ENCODINGS = {
    "wav": ("WAV", "PCM_16", "audio/wav"),
    "pcm": ("RAW", "PCM_16", "audio/pcm"),
    "flac": ("FLAC", "PCM_16", "audio/flac"),
    "mp3": ("MP3", "MPEG_LAYER_III", "audio/mpeg"),
    "opus": ("OGG", "OPUS", "audio/ogg"),  # Ogg Opus files are audio/ogg (RFC 7845)
}
MEDIA_TYPES = {name: media_type for name, (_, _, media_type) in ENCODINGS.items()}


@dataclass(frozen=True, slots=True)
class SpeechAudio:
    """Graph output `HTTP_RESPONSE_PAYLOAD` of the T2sCalculator: the encoded audio."""

    data: bytes
    media_type: str
    sample_rate: int
    samples: int


def encode_speech(waveform: np.ndarray, sample_rate: int, response_format: str) -> SpeechAudio:
    import soundfile

    # 16-bit once, here, so wav, pcm and flac hold the same samples (libsndfile rounds differently per format)
    samples = np.clip(np.rint(np.asarray(waveform, dtype=np.float32).reshape(-1) * 32768.0), -32768, 32767).astype(np.int16)
    buffer = io.BytesIO()
    if response_format not in ENCODINGS:
        raise ValueError(f"unknown response_format {response_format!r}")
    container, subtype, media_type = ENCODINGS[response_format]
    endian = "LITTLE" if container == "RAW" else "FILE"
    soundfile.write(buffer, samples, sample_rate, format=container, subtype=subtype, endian=endian)
    return SpeechAudio(buffer.getvalue(), media_type, sample_rate, len(samples))

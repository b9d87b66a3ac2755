"""Audio decoding (calculators/audio/decode.py): each container the server takes, encoded here
with soundfile at another rate and in stereo, comes back as 16 kHz mono float32 of the same
length; bad uploads are 400s naming `file`."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile

from calculators.audio.decode import SAMPLE_RATE, decode_audio
from graphs.errors import InvalidRequestError

SECONDS = 1.5


def encoded(fmt: str, subtype: str, rate: int, seconds: float = SECONDS, channels: int = 2) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, np.stack([tone] * channels, axis=1), rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("fmt", "subtype", "rate"),
    [
        ("WAV", "PCM_16", 16000),
        ("WAV", "FLOAT", 44100),
        ("FLAC", "PCM_24", 48000),
        ("OGG", "VORBIS", 22050),
        ("OGG", "OPUS", 48000),
        ("MP3", "MPEG_LAYER_III", 24000),
    ],
)
def test_formats_decode_to_16k_mono(fmt: str, subtype: str, rate: int) -> None:
    samples = decode_audio(encoded(fmt, subtype, rate), 60.0)
    assert samples.dtype == np.float32 and samples.ndim == 1
    # lossy codecs pad a little at the ends
    assert abs(len(samples) / SAMPLE_RATE - SECONDS) < 0.1
    assert 0.4 < float(np.abs(samples).max()) < 0.6


def test_wav_at_16k_is_unchanged() -> None:
    data = encoded("WAV", "FLOAT", SAMPLE_RATE, channels=1)
    expected, _ = soundfile.read(io.BytesIO(data), dtype="float32")
    assert np.array_equal(decode_audio(data, 60.0), expected)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"this is no audio at all" * 10, "could not decode"),
        (encoded("WAV", "PCM_16", 16000)[:30], "could not decode"),
        (encoded("WAV", "PCM_16", 16000, seconds=0.005), "at least"),
        (encoded("WAV", "PCM_16", 16000, seconds=3.0), "at most 2 s"),
        (encoded("MP3", "MPEG_LAYER_III", 16000, seconds=3.0), "2 s"),
    ],
)
def test_refusals(data: bytes, words: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        decode_audio(data, 2.0)
    assert caught.value.param == "file" and caught.value.code == "invalid_audio"
    assert words in caught.value.message

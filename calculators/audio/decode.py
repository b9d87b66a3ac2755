"""Uploaded audio -> 16 kHz mono float32 samples, the input Whisper takes.

soundfile (libsndfile 1.2.2, bundled in its wheel) reads wav, flac, ogg (vorbis, opus) and mp3
from memory; channels are averaged; soxr resamples to 16 kHz. Every failure is a 400 naming
the `file` field: an empty upload, bytes no decoder recognises, audio longer than the
server's limit (--max_audio_seconds, checked from the header before decoding) or too short
for one analysis frame.
"""

from __future__ import annotations

import io

import numpy as np

from graphs.errors import InvalidRequestError

SAMPLE_RATE = 16000  # Whisper's
MIN_SAMPLES = 201  # genai refuses fewer than n_fft / 2 samples (n_fft 400)
FORMATS = "wav, flac, ogg (vorbis, opus) or mp3"


def _invalid(message: str) -> InvalidRequestError:
    return InvalidRequestError(message, param="file", code="invalid_audio")


def decode_audio(data: bytes, max_seconds: float) -> np.ndarray:
    """The upload's samples at 16 kHz, mono, float32 in [-1, 1]. Read a second at a time, so
    memory holds only the 16 kHz result, never the whole file at its own rate and channels."""
    import soundfile
    import soxr

    if not data:
        raise _invalid("the audio file is empty")
    pieces: list[np.ndarray] = []
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as sound:
            rate = sound.samplerate
            if sound.frames > 0 and sound.frames / rate > max_seconds:
                raise _invalid(f"the audio is {sound.frames / rate:.1f} s long; this server takes at most {max_seconds:g} s")
            resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ") if rate != SAMPLE_RATE else None
            limit, read = int(max_seconds * rate), 0  # (an mp3 header need not know its length)
            for block in sound.blocks(blocksize=rate, dtype="float32", always_2d=True):
                read += len(block)
                if read > limit:
                    raise _invalid(f"the audio is longer than this server's limit of {max_seconds:g} s")
                mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
                pieces.append(resampler.resample_chunk(mono) if resampler is not None else mono.copy())
            if resampler is not None:
                pieces.append(resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
    except soundfile.SoundFileError as exc:
        reason = getattr(exc, "error_string", "") or "unreadable"  # (str(exc) names the buffer object)
        raise _invalid(f"could not decode the audio file ({reason}); send {FORMATS}") from None
    samples = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    if len(samples) < MIN_SAMPLES:
        shortest = MIN_SAMPLES * 1000 // SAMPLE_RATE + 1
        raise _invalid(f"the audio holds {len(samples) * 1000 // SAMPLE_RATE} ms of sound; at least {shortest} ms is needed")
    return samples

"""The audio upload flags (docs/audio.md): how large an uploaded audio file and how long its
sound may be. The file's size is checked as it is read (413), its length from the decoder (400)."""

from __future__ import annotations

import argparse

from serving.cli_types import positive_float, positive_int

DEFAULT_MAX_AUDIO_BYTES = 25 * 1024 * 1024  # OpenAI's upload limit
DEFAULT_MAX_AUDIO_SECONDS = 1500.0  # 25 min: 96 MB of 16 kHz samples at most in memory per request


def add_audio_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("audio uploads (/v3/audio/transcriptions, /v3/audio/translations; see docs/audio.md)")
    group.add_argument(
        "--max_audio_bytes",
        type=positive_int,
        default=DEFAULT_MAX_AUDIO_BYTES,
        help=f"largest uploaded audio file in bytes; larger is a 413 [{DEFAULT_MAX_AUDIO_BYTES // 2**20} MiB]",
    )
    group.add_argument(
        "--max_audio_seconds",
        type=positive_float,
        default=DEFAULT_MAX_AUDIO_SECONDS,
        help=f"longest audio in seconds; longer is a 400 [{DEFAULT_MAX_AUDIO_SECONDS:g}]",
    )

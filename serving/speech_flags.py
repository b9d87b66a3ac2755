"""The text-to-speech flag (docs/speech.md): the longest `input` a request may give."""

from __future__ import annotations

import argparse

from serving.cli_types import positive_int

DEFAULT_MAX_SPEECH_INPUT_CHARS = 4096  # OpenAI's limit on `input`


def add_speech_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("text to speech (/v3/audio/speech; see docs/speech.md)")
    group.add_argument(
        "--max_speech_input_chars",
        type=positive_int,
        default=DEFAULT_MAX_SPEECH_INPUT_CHARS,
        help=f"longest `input` text in characters; longer is a 400 [{DEFAULT_MAX_SPEECH_INPUT_CHARS}]",
    )

"""The audio upload flags (docs/audio.md): how large an uploaded audio file and how long its
sound may be. The file's size is checked as it is read (413), its length from the decoder (400)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from serving.cli_types import positive_float, positive_int

if TYPE_CHECKING:
    from graphs import GraphConfig
    from serving.settings import Settings

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


def speech_to_text_graph(graph: GraphConfig, model_path: Path, settings: Settings) -> GraphConfig:
    """Single-model mode's `--task speech2text`: the stock graph (OVMS's) on `model_path`, with
    --target_device / --plugin_config when given."""
    options: dict[str, object] = {"models_path": str(model_path.resolve())}
    if settings.llm.target_device:
        options["target_device"] = settings.llm.target_device
    if settings.llm.plugin_config:
        options["plugin_config"] = settings.llm.plugin_config
    nodes = tuple(dataclasses.replace(node, options={**node.options, **options}) for node in graph.nodes)
    return dataclasses.replace(graph, nodes=nodes)

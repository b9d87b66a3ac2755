"""The text-to-speech flag (docs/speech.md) and single-model mode's `--task text2speech` graph."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from serving.cli_types import positive_int

if TYPE_CHECKING:
    from graphs import GraphConfig
    from serving.settings import Settings

DEFAULT_MAX_SPEECH_INPUT_CHARS = 4096  # OpenAI's limit on `input`


def add_speech_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("text to speech (/v3/audio/speech; see docs/speech.md)")
    group.add_argument(
        "--max_speech_input_chars",
        type=positive_int,
        default=DEFAULT_MAX_SPEECH_INPUT_CHARS,
        help=f"longest `input` text in characters; longer is a 400 [{DEFAULT_MAX_SPEECH_INPUT_CHARS}]",
    )


def text_to_speech_graph(graph: GraphConfig, model_path: Path, settings: Settings) -> GraphConfig:
    """`--task text2speech` on a model folder: the stock graph (OVMS's pull graph) on `model_path`,
    with --target_device / --plugin_config when given. Voices come from the folder's `voices/`."""
    options: dict[str, object] = {"models_path": str(model_path.resolve())}
    if settings.llm.target_device:
        options["target_device"] = settings.llm.target_device
    if settings.llm.plugin_config:
        options["plugin_config"] = settings.llm.plugin_config
    nodes = tuple(dataclasses.replace(node, options={**node.options, **options}) for node in graph.nodes)
    return dataclasses.replace(graph, nodes=nodes)

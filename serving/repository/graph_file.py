"""The graph.pbtxt written beside a prepared model: the task's stock graph with the CLI's node options."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from serving.image_flags import NODE_OPTIONS as IMAGE_NODE_OPTIONS
from serving.repository.layout import (
    GRAPH_FILE,
    STOCK_GRAPHS,
    atomic_write,
)

# The one node-options block of each stock graph (LLMCalculatorOptions, the embeddings/rerank node's,
# or a media node's: OVMS writes those as `[type.googleapis.com / mediapipe.XOptions]: {` with commas)
_OPTIONS_BLOCK = re.compile(r"(\[type\.googleapis\.com ?/ ?mediapipe\.\w+Options\]:? \{\n)(.*?)(\n\s*\})", re.S)
# Options the CLI may set on a non-LLM node: pulled option (the LLM node's name) -> the node's field.
ENCODER_OPTIONS = {"device": "target_device"}
_AUDIO_OPTIONS = {"device": "target_device", "plugin_config": "plugin_config"}
IMAGE_OPTIONS = IMAGE_NODE_OPTIONS  # serving/image_flags.py's flags, each an ImageGenCalculatorOptions field of the same name
NODE_OPTIONS = {
    "embeddings": ENCODER_OPTIONS,
    "rerank": ENCODER_OPTIONS,
    "image_generation": {"device": "device", "plugin_config": "plugin_config", **{o: o for o in sorted(IMAGE_OPTIONS)}},
    "speech2text": _AUDIO_OPTIONS,
    "text2speech": _AUDIO_OPTIONS,
}
_KIND = {
    "text_generation": "LLM",
    "embeddings": "embeddings",
    "rerank": "rerank",
    "image_generation": "image generation",
    "speech2text": "speech-to-text",
    "text2speech": "text-to-speech",
}
# Enum fields of the LLM node's options proto: written as bare identifiers (pipeline_type: VLM).
ENUM_OPTIONS = frozenset({"pipeline_type"})


def _pbtxt_value(value: Any, enum: bool = False) -> str:
    if enum and isinstance(value, str) and value.isidentifier():
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        value = json.dumps(value)
    return json.dumps(str(value))


def graph_text(options: dict[str, Any] | None = None, task: str = "text_generation") -> str:
    """The task's stock graph with ``models_path: "./"`` and `options` set on its node (for the
    other tasks only those of NODE_OPTIONS, renamed: e.g. device -> target_device; the rest are the LLM node's)."""
    text = resources.files("graphs.stock").joinpath(STOCK_GRAPHS[task]).read_text(encoding="utf-8")
    llm = task == "text_generation"
    match = _OPTIONS_BLOCK.search(text)
    if match is None:  # pragma: no cover - the stock graph's shape
        raise RuntimeError(f"graphs/stock/{STOCK_GRAPHS[task]}: no calculator options block")
    values: dict[str, Any] = {}
    indent = "      "
    lines = match.group(2).splitlines()
    for line in lines:
        key, _, raw = line.strip().partition(":")
        values[key.strip()] = raw.strip().removesuffix(",")
        indent = line[: len(line) - len(line.lstrip())]
    values["models_path"] = '"./"'
    for key, value in (options or {}).items():
        if llm:
            values[key] = _pbtxt_value(value, enum=key in ENUM_OPTIONS)
        elif key in NODE_OPTIONS[task]:
            values[NODE_OPTIONS[task][key]] = _pbtxt_value(value)
    # the stock block's separators kept: OVMS's media graphs end each field with a comma
    comma = "," if any(line.rstrip().endswith(",") for line in lines) else ""
    last = "," if lines and lines[-1].rstrip().endswith(",") else ""
    body = f"{comma}\n".join(f"{indent}{key}: {raw}" for key, raw in values.items()) + last
    header = f"# Written by `ovserve --source_model` (the stock {_KIND[task]} graph); the model files sit beside it.\n"
    own = ovserve_only_options(options or {}) if llm else []
    if own:
        header += f"# It sets ovserve's own options ({', '.join(own)}): OVMS will not load it as it is.\n"
    return header + text[: match.start(2)] + body + text[match.end(2) :]


def ovserve_only_options(options: dict[str, Any]) -> list[str]:
    """The LLM node options that are ovserve's own: field numbers from 1000 up in
    graphs/proto/ovms_calculators.proto (those below are OVMS's)."""
    from graphs.proto import ovms_calculators_pb2

    fields = ovms_calculators_pb2.LLMCalculatorOptions.DESCRIPTOR.fields_by_name
    return sorted(key for key in options if key not in fields or fields[key].number >= 1000)


def write_graph(folder: Path, options: dict[str, Any] | None = None, task: str = "text_generation") -> Path:
    import calculators  # noqa: F401  (declares the options types the stock graphs name, e.g. mediapipe.S2tCalculatorOptions)
    from graphs.pbtxt import parse_graph

    text = graph_text(options, task)
    parse_graph(text, source=str(folder / GRAPH_FILE))  # GraphConfigError on a bad option value
    path = folder / GRAPH_FILE
    atomic_write(path, text)
    return path

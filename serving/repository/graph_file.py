"""The graph.pbtxt written beside a prepared model: the task's stock graph with the CLI's node options."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from serving.repository.layout import (
    GRAPH_FILE,
    STOCK_GRAPHS,
    atomic_write,
)

# The one node-options block of each stock graph (LLMCalculatorOptions, or the embeddings/rerank node's)
_OPTIONS_BLOCK = re.compile(r"(\[type\.googleapis\.com/mediapipe\.\w+Options\] \{\n)(.*?)(\n\s*\})", re.S)
# Options the CLI may set on an embeddings/rerank node (its other flags are the LLM node's).
ENCODER_OPTIONS = {"device": "target_device"}
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
    """The task's stock graph with ``models_path: "./"`` and `options` set on its node (for
    embeddings/rerank only the device, as ``target_device``; the other options are the LLM node's)."""
    text = resources.files("graphs.stock").joinpath(STOCK_GRAPHS[task]).read_text(encoding="utf-8")
    llm = task == "text_generation"
    match = _OPTIONS_BLOCK.search(text)
    if match is None:  # pragma: no cover - the stock graph's shape
        raise RuntimeError(f"graphs/stock/{STOCK_GRAPHS[task]}: no calculator options block")
    values: dict[str, Any] = {}
    indent = "      "
    for line in match.group(2).splitlines():
        key, _, raw = line.strip().partition(":")
        values[key.strip()] = raw.strip()
        indent = line[: len(line) - len(line.lstrip())]
    values["models_path"] = '"./"'
    for key, value in (options or {}).items():
        if llm:
            values[key] = _pbtxt_value(value, enum=key in ENUM_OPTIONS)
        elif key in ENCODER_OPTIONS:
            values[ENCODER_OPTIONS[key]] = _pbtxt_value(value)
    body = "\n".join(f"{indent}{key}: {raw}" for key, raw in values.items())
    kind = {"text_generation": "LLM", "embeddings": "embeddings", "rerank": "rerank"}[task]
    header = f"# Written by `ovserve --source_model` (the stock {kind} graph); the model files sit beside it.\n"
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
    from graphs.pbtxt import parse_graph

    text = graph_text(options, task)
    parse_graph(text, source=str(folder / GRAPH_FILE))  # GraphConfigError on a bad option value
    path = folder / GRAPH_FILE
    atomic_write(path, text)
    return path

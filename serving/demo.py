"""`ovserve demo`: build the demo model locally (cached) and write a servable folder for it.

Writes `<output>/config.json` (OVMS format) and `<output>/<name>/graph.pbtxt` (the stock graph
with `models_path` pointing at the built model), then prints the config path.
"""

from __future__ import annotations

import argparse
import json
from importlib import resources
from pathlib import Path

DEFAULT_NAME = "tiny"


def write_servable(output: Path, model_dir: Path, name: str = DEFAULT_NAME) -> Path:
    """Write config.json + graph.pbtxt serving `model_dir` as `name`; returns the config path."""
    graph = resources.files("graphs.stock").joinpath("llm.pbtxt").read_text(encoding="utf-8")
    if 'models_path: "./"' not in graph:
        raise RuntimeError('stock graph changed: expected models_path "./"')
    servable_dir = output / name
    servable_dir.mkdir(parents=True, exist_ok=True)
    # The demo model was trained to call tools in the hermes format and to think in <think>.
    options = f'models_path: {json.dumps(str(model_dir))}\n      tool_parser: "hermes3"\n      reasoning_parser: "qwen3"'
    (servable_dir / "graph.pbtxt").write_text(graph.replace('models_path: "./"', options))
    config = {"model_config_list": [{"config": {"name": name, "base_path": name}}]}
    config_path = output / "config.json"
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    return config_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ovserve demo", description=__doc__)
    parser.add_argument("--output", type=Path, default=Path(".cache/demo"), help="folder for config.json [.cache/demo]")
    parser.add_argument("--name", default=DEFAULT_NAME, help=f"servable name [{DEFAULT_NAME}]")
    args = parser.parse_args(argv)
    from serving.model_builder import build_tiny_model

    model_dir = build_tiny_model()
    print(write_servable(args.output.resolve(), model_dir, args.name))
    return 0

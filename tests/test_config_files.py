"""config/ (ready-to-copy deployments) stays valid without any model: its config.json files parse
and name existing servable folders, every graph.pbtxt validates (`ovserve graph check`), and each
graph's models_path is the link `make config-models` makes (serving.demo.CONFIG_MODELS). The
servables answer real requests in tests/e2e/test_config_deployments.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from graphs.pbtxt import load_graph
from serving.config_file import load_config_file
from serving.demo import CONFIG_MODELS
from serving.graph_cli import check

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


def tracked(name: str) -> list[Path]:
    """Files called `name` under config/, not inside the model links (a model folder may hold its
    own config.json)."""
    return sorted(Path(root, name) for root, _, files in os.walk(CONFIG_DIR) if name in files)  # os.walk: links not followed


CONFIGS = tracked("config.json")
GRAPHS = tracked("graph.pbtxt")


def test_config_holds_deployments() -> None:
    assert CONFIG_DIR / "config.json" in CONFIGS
    assert {p.parent.name for p in GRAPHS} >= set(CONFIG_MODELS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_config_json_loads(path: Path) -> None:
    specs = load_config_file(path)  # checks keys and that each servable folder has its graph
    assert specs and all(spec.graph_path.is_file() for spec in specs)


def test_every_graph_validates(capsys: pytest.CaptureFixture[str]) -> None:
    assert check(GRAPHS) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.count(": valid") == len(GRAPHS)


@pytest.mark.parametrize("name", sorted(CONFIG_MODELS))
def test_models_path_is_the_linked_model(name: str) -> None:
    link_name, _ = CONFIG_MODELS[name]
    graph = load_graph(CONFIG_DIR / name / "graph.pbtxt")
    paths = [str(node.options.get("models_path")) for node in graph.nodes if "models_path" in node.options]
    assert paths == [f"./{link_name}"]

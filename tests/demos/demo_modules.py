"""The demos' calculator modules, imported as the server imports them (by file path, once)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

from graphs import default_registry
from graphs.plugins import load_calculator_modules

DEMOS = Path(__file__).resolve().parents[2] / "demos"


def load_demo(folder: str, module_file: str, calculator: str) -> ModuleType:
    """Import demos/<folder>/<module_file> through the plugin loader; the module that registered
    `calculator`."""
    load_calculator_modules([module_file], DEMOS / folder, origin=f"demos/{folder}")
    cls = default_registry.get_calculator(calculator)
    assert cls is not None, f"{module_file} did not register {calculator}"
    return sys.modules[cls.__module__]


def copy_demo(folder: str, target: Path, model_dir: Path) -> Path:
    """The demo as shipped (config.json, graph.pbtxt, its Python modules) in `target`, with the
    `model` link its graph expects pointing at `model_dir`; returns the config path."""
    import shutil

    target.mkdir(parents=True, exist_ok=True)
    source = DEMOS / folder
    for item in [source / "config.json", source / "graph.pbtxt", *source.glob("*.py")]:
        shutil.copy2(item, target / item.name)
    (target / "model").symlink_to(model_dir)
    return target / "config.json"

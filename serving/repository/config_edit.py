"""Editing an OVMS config.json: add (or update) and remove servables (`--add_to_config`,
`--remove_from_config`), written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from serving.repository.layout import (
    GRAPH_FILE,
    ModelRepositoryError,
    atomic_write,
    is_servable,
)


def config_file_path(config_path: Path) -> Path:
    """OVMS accepts a folder for --config_path in these commands: its config.json."""
    return config_path / "config.json" if config_path.is_dir() else config_path


def _read_config(path: Path, create: bool) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if create:
            return {"model_config_list": []}
        raise ModelRepositoryError(f"config file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise ModelRepositoryError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ModelRepositoryError(f"{path}: not a JSON object")
    for key in ("model_config_list", "mediapipe_config_list"):
        if not isinstance(raw.get(key, []), list):
            raise ModelRepositoryError(f"{path}: {key} is not a list")
    return raw


def _entry_name(entry: Any, key: str) -> str | None:
    if not isinstance(entry, dict):
        return None
    if key == "model_config_list":
        config = entry.get("config")
        return config.get("name") if isinstance(config, dict) else None
    return entry.get("name")


def relative_base_path(config: Path, base_path: str | Path) -> str:
    """`base_path` as written into `config`: relative paths stay as given (they are relative to the
    config file's folder, as OVMS reads them); absolute ones become relative when inside that folder."""
    base = Path(base_path).expanduser()
    if not base.is_absolute():
        return base.as_posix()
    root = config.resolve().parent
    resolved = base.resolve()
    if resolved.is_relative_to(root):
        return resolved.relative_to(root).as_posix() or "."
    return resolved.as_posix()


def add_to_config(config_path: Path, name: str, base_path: str | Path) -> Path:
    """Add (or update) `name` in `config_path`'s model_config_list; the file is created when missing."""
    path = config_file_path(config_path)
    config = _read_config(path, create=True)
    written = relative_base_path(path, base_path)
    folder = path.resolve().parent / written
    if not is_servable(folder):
        raise ModelRepositoryError(f"{folder}: no {GRAPH_FILE} there (prepare it first, e.g. --pull --source_model ...)")
    if any(_entry_name(e, "mediapipe_config_list") == name for e in config.get("mediapipe_config_list", [])):
        raise ModelRepositoryError(f"{path}: {name!r} is already a mediapipe_config_list entry")
    models = config.setdefault("model_config_list", [])
    for entry in models:
        if _entry_name(entry, "model_config_list") == name:
            entry["config"]["base_path"] = written
            break
    else:
        models.append({"config": {"name": name, "base_path": written}})
    atomic_write(path, json.dumps(config, indent=4) + "\n")
    return path


def remove_from_config(config_path: Path, name: str) -> Path:
    path = config_file_path(config_path)
    config = _read_config(path, create=False)
    found = False
    for key in ("model_config_list", "mediapipe_config_list"):
        if key in config:
            kept = [e for e in config[key] if _entry_name(e, key) != name]
            found = found or len(kept) != len(config[key])
            config[key] = kept
    if not found:
        raise ModelRepositoryError(f"{path}: no servable named {name!r}")
    atomic_write(path, json.dumps(config, indent=4) + "\n")
    return path

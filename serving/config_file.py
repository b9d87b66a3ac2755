"""OVMS's `config.json`: which servables to load, from which folders.

Accepted: `model_config_list: [{"config": {...}}]` (an entry whose folder holds a graph is a
graph servable) and the older `mediapipe_config_list: [{...}]`. Paths are relative to the
config file's folder. Keys OVMS documents that have no role here (`nireq`,
`model_version_policy`, `pipeline_config_list`, …: `OVMS_MODEL_KEYS`, `OVMS_TOP_KEYS`) are
accepted and named in one warning per (re)load; any other unknown key is an error naming it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, ValidatorFunctionWrapHandler, model_validator

log = logging.getLogger("ovserve.config")
# OVMS's keys for classic (non-generative) models, DAG pipelines, custom nodes and loaders
OVMS_MODEL_KEYS = frozenset(
    {
        "nireq", "model_version_policy", "shape", "batch_size", "layout", "stateful", "idle_sequence_cleanup",
        "max_sequence_number", "low_latency_transformation", "custom_loader_options", "allow_cache",
    }
)  # fmt: skip
OVMS_TOP_KEYS = frozenset({"pipeline_config_list", "custom_node_library_config_list", "custom_loader_config_list"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _OvmsTolerant(_Strict):
    """Takes `ovms_keys` aside (named in a warning) before the strict fields are checked."""

    ovms_keys: ClassVar[frozenset[str]] = frozenset()
    _no_effect: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _take_ovms_keys(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if not isinstance(data, dict):
            return handler(data)
        model = handler({k: v for k, v in data.items() if k not in cls.ovms_keys})
        model._no_effect = tuple(k for k in data if k in cls.ovms_keys)
        return model


class ModelConfig(_OvmsTolerant):
    ovms_keys = OVMS_MODEL_KEYS
    name: str
    base_path: str
    graph_path: str | None = None
    target_device: str | None = None
    plugin_config: dict[str, Any] | str | None = None
    # ovserve's own (OVMS lacks them): load on the first request; unload after N idle seconds
    lazy_load: bool = False
    idle_unload_seconds: Annotated[float, Field(gt=0)] | None = None


class ModelEntry(_Strict):
    config: ModelConfig


class MediapipeEntry(_Strict):
    name: str
    base_path: str | None = None
    graph_path: str | None = None
    subconfig: str | None = None
    lazy_load: bool = False
    idle_unload_seconds: Annotated[float, Field(gt=0)] | None = None


class MetricsConfig(_Strict):
    enable: bool = False
    metrics_list: list[str] = []  # metric families to serve (serving/metrics_catalog.py); empty: all


class MonitoringConfig(_Strict):
    """OVMS's `"monitoring": {"metrics": {"enable": true, "metrics_list": [...]}}`."""

    metrics: MetricsConfig = MetricsConfig()


class ConfigFile(_OvmsTolerant):
    ovms_keys = OVMS_TOP_KEYS
    model_config_list: list[ModelEntry] = []
    mediapipe_config_list: list[MediapipeEntry] = []
    monitoring: MonitoringConfig | None = None
    # ovserve's own: users' calculator modules (graphs.plugins), imported before graphs are validated
    calculator_modules: list[str] = []


@dataclass(frozen=True, slots=True)
class ServableSpec:
    name: str
    base_path: Path  # folder that relative paths in the graph resolve against
    graph_path: Path
    lazy: bool = False
    idle_unload_s: float | None = None


class ConfigFileError(Exception):
    pass


def _describe(error: ValidationError, path: Path) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"])
        if item["type"] == "extra_forbidden":
            lines.append(f"unknown key {where!r}")
        else:
            lines.append(f"{where}: {item['msg']}")
    return f"{path}: " + "; ".join(lines)


def _graph_path(base: Path, graph_path: str | None) -> Path:
    if graph_path is None:
        return base / "graph.pbtxt"
    candidate = Path(graph_path)
    return candidate if candidate.is_absolute() else base / candidate


def _parse(path: Path) -> ConfigFile:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigFileError(f"config file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise ConfigFileError(f"{path}: not valid JSON: {exc}") from None
    try:
        return ConfigFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigFileError(_describe(exc, path)) from None


def load_monitoring(path: Path) -> MetricsConfig:
    """The file's `monitoring.metrics` section (defaults when it has none), names checked."""
    from serving.metrics_catalog import check_names

    config = _parse(path)
    metrics = config.monitoring.metrics if config.monitoring is not None else MetricsConfig()
    try:
        check_names(metrics.metrics_list, f"{path}: monitoring.metrics.metrics_list")
    except ValueError as exc:
        raise ConfigFileError(str(exc)) from None
    return metrics


def load_calculator_modules(path: Path) -> list[str]:
    """Import the file's `calculator_modules` (relative to its folder); the names they added."""
    from graphs.plugins import PluginError, load_calculator_modules

    config = _parse(path)
    try:
        return load_calculator_modules(config.calculator_modules, path.resolve().parent, origin=f"{path}: calculator_modules")
    except PluginError as exc:
        raise ConfigFileError(str(exc)) from None


def _warn_ovms_keys(config: ConfigFile, path: Path) -> None:
    named = list(config._no_effect) + [f"{e.config.name}: {key}" for e in config.model_config_list for key in e.config._no_effect]
    if named:
        log.warning("%s: OVMS keys accepted for compatibility; they have no effect here: %s", path, ", ".join(named))


def load_config_file(path: Path) -> list[ServableSpec]:
    config = _parse(path)
    _warn_ovms_keys(config, path)
    root = path.resolve().parent
    specs: list[ServableSpec] = []
    for entry in config.model_config_list:
        base = (root / entry.config.base_path).resolve()
        graph = _graph_path(base, entry.config.graph_path)
        if not graph.is_file():
            raise ConfigFileError(
                f"{path}: model {entry.config.name!r}: no graph at {graph} (only graph servables are served: "
                "put a graph.pbtxt in base_path, or use ovserve --model_path for a bare model folder)"
            )
        specs.append(ServableSpec(entry.config.name, base, graph, entry.config.lazy_load, entry.config.idle_unload_seconds))
    for mp in config.mediapipe_config_list:
        base = (root / (mp.base_path or mp.name)).resolve()
        specs.append(ServableSpec(mp.name, base, _graph_path(base, mp.graph_path), mp.lazy_load, mp.idle_unload_seconds))
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigFileError(f"{path}: servable names used twice: {', '.join(duplicates)}")
    if not specs:
        raise ConfigFileError(f"{path}: no servables (model_config_list and mediapipe_config_list are empty)")
    return specs

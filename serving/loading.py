"""Turn settings into servables: config.json entries, or one model folder (single-model mode)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import calculators  # noqa: F401 - registers the stock calculators
from graphs import GraphConfig, GraphConfigError
from graphs.pbtxt import load_graph, parse_graph
from graphs.plugins import PluginError, load_entry_points
from graphs.plugins import load_calculator_modules as load_plugin_modules
from serving.config_file import ConfigFileError, load_calculator_modules, load_config_file, load_monitoring
from serving.metrics_catalog import check_names
from serving.servable import Servable, make_servable
from serving.settings import Settings

STOCK_LLM_GRAPH = "llm.pbtxt"


def stock_graph(name: str) -> GraphConfig:
    text = resources.files("graphs.stock").joinpath(name).read_text(encoding="utf-8")
    return parse_graph(text, source=f"graphs/stock/{name}")


def _stock_on_model(
    name: str, model_path: Path, settings: Settings, device_key: str = "target_device", extra: dict[str, Any] | None = None
) -> GraphConfig:
    """The stock graph `name` with every node pointed at `model_path`, given --target_device and
    --plugin_config when set (ImageGenCalculator calls the device option `device`) and `extra`."""
    graph = stock_graph(name)
    options: dict[str, Any] = {"models_path": str(model_path.resolve()), **(extra or {})}
    if settings.llm.target_device:
        options[device_key] = settings.llm.target_device
    if settings.llm.plugin_config:
        options["plugin_config"] = settings.llm.plugin_config
    return dataclasses.replace(graph, nodes=tuple(dataclasses.replace(n, options={**n.options, **options}) for n in graph.nodes))


def single_model_graph(model_path: Path, settings: Settings) -> GraphConfig:
    """The stock graph for the task pointed at `model_path`, with the CLI's flags applied."""
    if settings.task in ("embeddings", "rerank"):
        return _stock_on_model(f"{settings.task}.pbtxt", model_path, settings)
    if settings.task == "speech2text":  # OVMS's graph
        return _stock_on_model("speech_to_text.pbtxt", model_path, settings)
    if settings.task == "image_generation":  # the image flags are the node's options
        return _stock_on_model("image_generation.pbtxt", model_path, settings, "device", settings.image_options)
    if settings.task == "text2speech":  # OVMS's pull graph; voices come from the folder's voices/
        return _stock_on_model("text_to_speech.pbtxt", model_path, settings)
    if settings.task not in (None, "text_generation"):
        raise ValueError(f"--task {settings.task} is not served yet")
    graph = stock_graph(STOCK_LLM_GRAPH)
    overrides = {"models_path": str(model_path.resolve()), **settings.llm.node_options()}
    nodes = tuple(
        dataclasses.replace(node, options={**node.options, **overrides}) if node.calculator == "ContinuousBatchingLLMCalculator" else node
        for node in graph.nodes
    )
    return dataclasses.replace(graph, nodes=nodes)


def metrics_settings(settings: Settings) -> tuple[bool, tuple[str, ...]]:
    """Whether /metrics is served and which families (empty: all): `--metrics_enable` or
    config.json's `monitoring.metrics.enable` turns it on; `--metrics_list` wins over the file's
    `metrics_list`. Unknown names, or a list without enabling: ValueError for the flags,
    ConfigFileError for the file."""
    check_names(settings.metrics_list, "--metrics_list")
    enabled, names = settings.metrics_enable, settings.metrics_list
    if settings.config_path is not None:
        monitoring = load_monitoring(settings.config_path)
        enabled = enabled or monitoring.enable
        names = names or tuple(monitoring.metrics_list)
    if names and not enabled:
        if settings.metrics_list:
            raise ValueError("--metrics_list needs --metrics_enable (or monitoring.metrics.enable in config.json)")
        where = settings.config_path
        raise ConfigFileError(f"{where}: monitoring.metrics.metrics_list needs monitoring.metrics.enable (or --metrics_enable)")
    return enabled, names


def _fingerprint(base_path: Path, graph: bytes) -> str:
    return hashlib.sha256(str(base_path).encode() + b"\0" + graph).hexdigest()


def load_user_calculators(config_path: Path | None, modules: Sequence[str] = ()) -> None:
    """Register users' calculators before any graph is validated: entry points, `modules`
    (`ovserve graph --calculator_module`: dotted names, or .py paths from the working folder),
    then config.json's `calculator_modules`. ConfigFileError names the module that failed."""
    try:
        load_entry_points()
        load_plugin_modules(modules, Path.cwd(), origin="--calculator_module")
    except PluginError as exc:
        raise ConfigFileError(str(exc)) from None
    if config_path is not None:
        load_calculator_modules(config_path)


def build_servables(settings: Settings) -> tuple[list[Servable], list[GraphConfigError]]:
    """Parse and validate every graph: the valid servables, and what was wrong with the others.

    Raises GraphConfigError in single-model mode, ConfigFileError for a bad config.json.
    """
    metrics_settings(settings)  # bad metric names stop the server before it starts
    load_user_calculators(settings.config_path)
    if settings.config_path is not None:
        specs = load_config_file(settings.config_path)
        servables: list[Servable] = []
        problems: list[GraphConfigError] = []
        for spec in specs:
            try:
                graph_text = spec.graph_path.read_bytes() if spec.graph_path.is_file() else b""
                fingerprint = _fingerprint(spec.base_path, graph_text + f"|{spec.lazy}|{spec.idle_unload_s}".encode())
                graph = load_graph(spec.graph_path)
                servables.append(make_servable(spec.name, spec.base_path, graph, fingerprint, spec.lazy, spec.idle_unload_s))
            except GraphConfigError as exc:
                problems.append(exc)
        return servables, problems
    assert settings.model_path is not None
    model_path = settings.model_path.resolve()
    name = settings.model_name or model_path.name
    own_graph = model_path / "graph.pbtxt"
    if own_graph.is_file():  # as OVMS: a model folder with a graph serves that graph
        return [make_servable(name, model_path, load_graph(own_graph))], []
    return [make_servable(name, model_path, single_model_graph(model_path, settings))], []

"""Users' own calculators: modules that register into `default_registry` when imported.

Two ways in, both resolved before any graph is validated, so a graph names a user calculator
exactly as it names ours:
- `calculator_modules` (config.json, `ovserve graph check --calculator_module`): a dotted module
  name, imported with the config file's folder first on `sys.path`, or a `.py` file path
  relative to that folder;
- the `ovserve.calculators` entry-point group of installed packages: each entry point names a
  module (importing it registers its calculators) or a `Calculator` subclass (registered under
  the entry point's name).

Python cannot unload a module, so a module is imported once per process: a later load of the
same entry is a no-op, and a module whose file changed since is refused (a config reload then
keeps the previous config serving) — new code needs a restart.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import traceback
import zlib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from types import ModuleType

from graphs.calculator import Calculator
from graphs.registry import Registry, default_registry

ENTRY_POINT_GROUP = "ovserve.calculators"

_loaded: dict[str, tuple[ModuleType, float | None]] = {}  # resolved entry -> module, file mtime
_entry_points_loaded: list[str] = []


class PluginError(Exception):
    """A user calculator module could not be imported or registered."""


def _reason(exc: BaseException) -> str:
    """The last frame and the error: enough to find the line, without a full traceback."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _is_file(entry: str) -> bool:
    return entry.endswith(".py") or "/" in entry or "\\" in entry


def _mtime(module: ModuleType) -> float | None:
    file = getattr(module, "__file__", None)
    try:
        return Path(file).stat().st_mtime if file else None
    except OSError:
        return None


def _import_file(path: Path) -> ModuleType:
    # A name of its own per file (two folders may both hold a `guard.py`); the file's folder goes
    # on sys.path so the module can import its siblings.
    name = f"ovserve_user_{path.stem}_{zlib.crc32(str(path).encode()):08x}"
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"not a Python module: {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up here
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_calculator_modules(entries: Iterable[str], base: Path, *, origin: str) -> list[str]:
    """Import each entry (see the module doc) and return the calculator names it added.

    `origin` says where the list came from, for error messages (e.g. the config file's path).
    """
    added: list[str] = []
    for entry in entries:
        path = (Path(entry) if Path(entry).is_absolute() else base / entry).resolve() if _is_file(entry) else None
        key = str(path) if path is not None else entry
        if key in _loaded:
            module, mtime = _loaded[key]
            if _mtime(module) != mtime:
                raise PluginError(f"{origin}: calculator module {entry!r} changed since it was imported; restart to load new code")
            continue
        if path is not None and not path.is_file():
            raise PluginError(f"{origin}: calculator module {entry!r}: no file {path}")
        before = set(default_registry.names())
        try:
            if path is not None:
                module = _import_file(path)
            else:
                folder = str(base.resolve())
                if folder not in sys.path:
                    sys.path.insert(0, folder)
                module = importlib.import_module(entry)
        except BaseException as exc:  # a user's module may raise anything, SystemExit included
            raise PluginError(f"{origin}: calculator module {entry!r} failed to import: {_reason(exc)}") from None
        _loaded[key] = (module, _mtime(module))
        added.extend(sorted(set(default_registry.names()) - before))
    return added


def load_entry_points(registry: Registry = default_registry) -> list[str]:
    """Load every `ovserve.calculators` entry point once; return the names they added."""
    if _entry_points_loaded:
        return []
    added: list[str] = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        before = set(registry.names())
        origin = f"entry point {ep.name!r} ({ep.value}) of group {ENTRY_POINT_GROUP!r}"
        try:
            loaded = ep.load()
        except BaseException as exc:
            raise PluginError(f"{origin} failed to import: {_reason(exc)}") from None
        if inspect.isclass(loaded):
            if not issubclass(loaded, Calculator):
                raise PluginError(f"{origin}: {loaded.__qualname__} is not a graphs.Calculator subclass")
            if registry.get_calculator(ep.name) is not loaded:
                try:
                    registry.add_calculator(loaded, ep.name)
                except ValueError as exc:
                    raise PluginError(f"{origin}: {exc}") from None
        elif not inspect.ismodule(loaded):
            raise PluginError(f"{origin}: names a {type(loaded).__name__}; expected a module or a Calculator subclass")
        added.extend(sorted(set(registry.names()) - before))
    _entry_points_loaded.append("done")
    return added

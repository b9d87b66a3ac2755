"""The benchmark peers' drivers in demos/benchmark/ (standard-library scripts, not a package),
imported by file path once."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARK = Path(__file__).resolve().parents[2] / "demos" / "benchmark"


def load(name: str) -> ModuleType:
    """demos/benchmark/<name>.py as a module (cached in sys.modules under `bench_peer_<name>`)."""
    key = f"bench_peer_{name}"
    if str(BENCHMARK) not in sys.path:  # the drivers import each other by name (llama_peer: peer)
        sys.path.append(str(BENCHMARK))
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, BENCHMARK / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]

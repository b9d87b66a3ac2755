"""The dependency direction of DESIGN.md, checked on the source: graphs <- calculators <- serving."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# package -> top-level modules it must never import
FORBIDDEN = {
    "graphs": {"calculators", "serving", "aiohttp", "openvino", "openvino_genai"},
    "calculators": {"serving", "aiohttp"},
}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_dependency_direction(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_modules(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
        if imported_modules(path) & FORBIDDEN[package]
    }
    assert not offenders, f"{package} must not import {sorted(FORBIDDEN[package])}: {offenders}"


def test_serving_never_touches_openvino_genai() -> None:
    """serving/ reaches the engine only through calculators (the model builders are the
    exception: they make and check models, they serve nothing)."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "serving").rglob("*.py")
        if "openvino_genai" in imported_modules(path) and path.name not in ("model_builder.py", "embedding_models.py")
    ]
    assert not offenders

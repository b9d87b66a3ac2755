"""The wheel's import names stay ours (docs/architecture.md, "Package names").

ovserve installs the top-level packages `graphs`, `calculators` and `serving`. We keep those
names; the price is that no other distribution in the venv may ship one of them (its files would
overwrite ours, or one would shadow the other). These tests fail CI when a dependency brings a
clashing top-level package, and when the wheel starts to ship anything else at top level.
"""

from __future__ import annotations

import importlib.metadata
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from setuptools import find_namespace_packages, find_packages

ROOT = Path(__file__).resolve().parents[1]
OURS = frozenset({"graphs", "calculators", "serving"})
DISTRIBUTION = "ovserve"


def clashes(provided_by: Mapping[str, Sequence[str]], names: frozenset[str] = OURS) -> dict[str, list[str]]:
    """Our top-level names that a distribution other than ovserve provides, with those distributions."""
    found = {name: sorted(set(provided_by.get(name, ())) - {DISTRIBUTION}) for name in names}
    return {name: others for name, others in found.items() if others}


def wheel_packages() -> list[str]:
    """The packages setuptools puts in the wheel, from pyproject.toml's [tool.setuptools] config."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    packages = config.get("packages", {"find": {}})
    if isinstance(packages, list):
        return list(packages)
    find = dict(packages["find"])
    where = find.pop("where", ["."])
    # setuptools' pyproject `find` finds namespace packages unless told otherwise.
    finder = find_namespace_packages if find.pop("namespaces", True) else find_packages
    return sorted({pkg for folder in where for pkg in finder(str(ROOT / folder), **find)})


def test_no_other_distribution_provides_our_top_level_names() -> None:
    provided_by = importlib.metadata.packages_distributions()
    assert clashes(provided_by) == {}, "another installed distribution ships one of ovserve's import names"
    # ovserve itself, when installed (editable or not), provides exactly these three; run from a
    # bare checkout it provides none.
    ours = {name for name, dists in provided_by.items() if DISTRIBUTION in dists}
    assert ours in (set(), set(OURS))


def test_the_check_sees_a_clashing_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A distribution with a top-level `serving` package, installed beside us, is reported."""
    info = tmp_path / "clashing_dep-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: clashing-dep\nVersion: 1.0\n", encoding="utf-8")
    (info / "top_level.txt").write_text("serving\n", encoding="utf-8")
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    assert "clashing-dep" in clashes(importlib.metadata.packages_distributions()).get("serving", [])


def test_the_wheel_ships_only_our_three_packages() -> None:
    packages = wheel_packages()
    assert {pkg.partition(".")[0] for pkg in packages} == OURS, "the wheel's top-level packages"
    assert set(packages) >= OURS
    # Subpackages ship too (a find config that dropped them would break the installed server).
    assert {"graphs.stock", "calculators.llm.engine", "serving.kserve"} <= set(packages)

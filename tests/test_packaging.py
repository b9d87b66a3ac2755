"""Packaging: pyproject.toml declares what the server imports, and requirements/*.lock agree with it.

The locks (docs/packaging.md) are produced by `make lock`; these tests keep them honest between
regenerations: every line hashed, runtime ⊂ export ⊂ test at the same versions, the runtime lock
free of test and export packages, and every pin in pyproject.toml the locked one.
"""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.helpers.locks import LOCKS, normalize, read_lock

ROOT = Path(__file__).resolve().parents[1]
OURS = ("graphs", "calculators", "serving")
#: Never in the runtime lock: the image and a production venv carry none of these.
NOT_AT_RUN_TIME = {"torch", "torchvision", "transformers", "optimum", "optimum-intel", "nncf", "pytest", "ruff", "mypy", "uv"}


def project() -> dict[str, list[str]]:
    """Requirement strings of pyproject.toml: key "" for [project.dependencies], else the extra."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {"": meta["dependencies"], **meta["optional-dependencies"]}


def imports(package: str) -> dict[str, bool]:
    """Third-party top-level modules imported under `package`: name -> imported at module level
    somewhere (False: only inside functions, i.e. loaded on the path that needs it)."""
    found: dict[str, bool] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for top in {name.partition(".")[0] for name in names} - set(OURS) - sys.stdlib_module_names:
                found[top] = found.get(top, False) or id(node) in module_level
    return found


def test_every_import_of_the_server_is_a_declared_dependency() -> None:
    """What graphs/, calculators/ and serving/ import comes from [project.dependencies]; the
    export extra's packages (torch, optimum, transformers) only inside functions (`--pull` export)."""
    declared = project()
    runtime = {normalize(Requirement(r).name) for r in declared[""]}
    export = {normalize(Requirement(r).name) for r in declared["export"]}
    provided_by = importlib.metadata.packages_distributions()
    missing = {}
    for package in OURS:
        for module, module_level in imports(package).items():
            dists = {normalize(d) for d in provided_by.get(module, [])}
            allowed = runtime if module_level else runtime | export
            if not dists & allowed:
                missing[f"{package}: {module}"] = sorted(dists) or "not installed"
    assert missing == {}, "imported but not declared in pyproject.toml (module-level imports need [project.dependencies])"


def test_the_import_walk_sees_lazy_and_module_level_imports() -> None:
    found = imports("serving")
    assert found["aiohttp"] is True  # serving/app.py and others, at module level
    assert found["huggingface_hub"] is False  # only inside serving/repository/pull.py's functions
    assert "serving" not in found and "json" not in found


@pytest.mark.parametrize("lock", ["runtime", "export", "test", "models"])
def test_every_locked_package_is_pinned_with_hashes(lock: str) -> None:
    text = (LOCKS / f"{lock}.lock").read_text(encoding="utf-8")
    entries = read_lock(LOCKS / f"{lock}.lock")
    assert entries, f"{lock}.lock is empty"
    unhashed = sorted(name for name, (_, hashes) in entries.items() if hashes == 0)
    assert unhashed == [], f"{lock}.lock: pinned without a hash"
    # Every requirement line is a pin: no ranges, URLs or editable installs slip in.
    requirement_lines = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    assert len(requirement_lines) == len(entries)
    assert "torchvision" not in entries


def test_each_lock_builds_on_the_one_before_at_the_same_versions() -> None:
    runtime, export, test = (read_lock(LOCKS / f"{name}.lock") for name in ("runtime", "export", "test"))
    for smaller, larger, what in ((runtime, export, "runtime ⊄ export"), (export, test, "export ⊄ test")):
        differ = {
            name: (version, larger.get(name, ("missing",))[0])
            for name, (version, _) in smaller.items()
            if larger.get(name, ("",))[0] != version
        }
        assert differ == {}, what
    assert NOT_AT_RUN_TIME.isdisjoint(runtime), "the runtime lock carries export, test or tool packages"


def test_every_pin_in_pyproject_is_the_locked_version() -> None:
    lock_of = {"": "runtime", "export": "export", "test": "test", "bench": "test", "demo": "models"}
    wrong = {}
    for extra, requirements in project().items():
        locked = read_lock(LOCKS / f"{lock_of[extra]}.lock")
        for text in requirements:
            requirement = Requirement(text)
            version = locked.get(normalize(requirement.name), ("missing",))[0]
            # `torch==2.13.0` admits the locked CPU build 2.13.0+cpu (a local version label).
            if version == "missing" or not requirement.specifier.contains(version, prereleases=True):
                wrong[f"{extra or 'dependencies'}: {text}"] = version
    assert wrong == {}, "pyproject.toml pins that differ from requirements/*.lock"


def test_setup_installs_the_locks_with_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "DEV_LOCKS := requirements/test.lock requirements/models.lock" in makefile
    assert "--require-hashes" in makefile and "pip compile" in makefile and "--generate-hashes" in makefile
    assert "uv==" in (LOCKS / "dev.in").read_text(encoding="utf-8")

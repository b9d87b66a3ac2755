"""The dependency direction of docs/architecture.md, checked on the source: graphs <- calculators <- serving."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# package -> top-level modules it must never import
FORBIDDEN = {
    "graphs": {"calculators", "serving", "aiohttp", "openvino", "openvino_genai", "tests"},
    "calculators": {"serving", "aiohttp", "tests"},
    # the wheel holds no tests/: serving reaches the test/demo models only through serving/dev_models.py,
    # which imports tests.models by name when a developer command asks (never at import time)
    "serving": {"tests"},
}
# file -> the FORBIDDEN modules it may import anyway, and why
ALLOWED = {
    # aiohttp's HTTP *client* fetches image_url images (its resolver guards every address); the
    # server side of aiohttp stays in serving/
    "calculators/media/fetch.py": {"aiohttp"},
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
    def forbidden(path: Path) -> set[str]:
        return (imported_modules(path) & FORBIDDEN[package]) - ALLOWED.get(path.relative_to(ROOT).as_posix(), set())

    offenders = {str(path.relative_to(ROOT)): sorted(found) for path in (ROOT / package).rglob("*.py") if (found := forbidden(path))}
    assert not offenders, f"{package} must not import {sorted(FORBIDDEN[package])}: {offenders}"


def test_serving_never_touches_openvino_genai() -> None:
    """serving/ reaches the engine only through calculators (the model builders that make and
    check models live in tests/models/)."""
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "serving").rglob("*.py") if "openvino_genai" in imported_modules(path)]
    assert not offenders


def full_imports(path: Path) -> set[str]:
    """Every module `path` imports by absolute name (function-level imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_test_module_imports_another() -> None:
    """Shared helpers live in tests/helpers/ (fixtures in a folder's conftest.py): no module under
    tests/ imports a `tests.*.test_*` module."""
    offenders = {
        str(path.relative_to(ROOT)): sorted(test_modules)
        for path in (ROOT / "tests").rglob("*.py")
        if (test_modules := {name for name in full_imports(path) if name.startswith("tests.") and "test_" in name})
        and any(part.startswith("test_") for name in test_modules for part in name.split("."))
    }
    assert not offenders, f"test modules imported by other modules (move the helper to tests/helpers/): {offenders}"


PACKAGES = ("graphs", "calculators", "serving")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of the nodes under `if TYPE_CHECKING:` (imports for annotations only, never run)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
                isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
            ):
                skipped.update(id(inner) for statement in node.body for inner in ast.walk(statement))
    return skipped


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports, for every module of graphs/, calculators/ and serving/.

    Every `import` and `from ... import` counts wherever it is (module level, inside functions:
    a deferred import still ties the two modules together), except under `if TYPE_CHECKING:`,
    which never runs. `from package import name` counts as importing package.name when that is a
    module, else the package (its __init__)."""
    modules = {_module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = _type_checking_only(tree)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str | None] = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                targets.update(known(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package
                    for _ in range(node.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    base = f"{anchor}.{base}" if base else anchor
                targets.update(known(f"{base}.{alias.name}") for alias in node.names)
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_no_import_cycle() -> None:
    """No two modules of graphs/, calculators/ and serving/ import each other, directly or around
    a loop (issue 16 target 2): imports inside functions count, `if TYPE_CHECKING:` ones do not."""
    graph = import_graph()
    cycles = import_cycles(graph)
    shown = [" -> ".join(f"{m} (imports {sorted(graph[m] & set(cycle))})" for m in cycle) for cycle in cycles]
    assert not cycles, "import cycles:\n" + "\n".join(shown)


def test_the_cycle_check_sees_deferred_imports() -> None:
    """The checker itself: a loop closed by an import inside a function is a cycle; one closed
    only under TYPE_CHECKING is not."""
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import x\ndef f():\n    import y\n")
    skipped = _type_checking_only(tree)
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) and id(n) not in skipped for a in n.names]
    assert imported == ["y"]

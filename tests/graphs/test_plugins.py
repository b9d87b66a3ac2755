"""Users' calculator modules: config.json's `calculator_modules` and `ovserve.calculators` entry points."""

from __future__ import annotations

import os
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import graphs.plugins as plugins
from graphs import default_registry
from graphs.pbtxt import parse_graph
from graphs.plugins import PluginError, load_calculator_modules, load_entry_points
from graphs.registry import Registry
from graphs.validate import validate

MODULE = """
from graphs import Calculator, Contract, InputSet, Options, default_registry


class EchoOptions(Options):
    suffix: str = "!"


@default_registry.calculator("{name}")
class Echo(Calculator):
    inline = True
    contract = Contract.of(inputs=("IN",), outputs=("OUT",), options=EchoOptions)

    async def process(self, inputs: InputSet) -> None:
        self.ctx.emit("OUT", inputs["IN"].value + self.ctx.options.suffix)
"""


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def graph_using(calculator: str) -> str:
    return f"""
    input_stream: "IN:in"
    output_stream: "OUT:out"
    node {{ calculator: "{calculator}" input_stream: "IN:in" output_stream: "OUT:out"
           node_options {{ [type.googleapis.com/ovserve.{calculator}Options] {{ suffix: "?" }} }} }}
    """


@pytest.fixture
def clean_sys_path() -> Iterator[None]:
    saved = list(sys.path)
    yield
    sys.path[:] = saved


def test_a_dotted_module_next_to_the_config_registers_its_calculators(tmp_path: Path, clean_sys_path: None) -> None:
    module, name = unique("userpkg_"), unique("EchoCalculator")
    (tmp_path / module).mkdir()
    (tmp_path / module / "__init__.py").write_text("")
    (tmp_path / module / "echo.py").write_text(MODULE.format(name=name))
    added = load_calculator_modules([f"{module}.echo"], tmp_path, origin="config.json")
    assert added == [name]
    graph = validate(parse_graph(graph_using(name), source="g"))
    assert graph.nodes[0].options.suffix == "?"
    # importing again is a no-op (a config reload with the same list)
    assert load_calculator_modules([f"{module}.echo"], tmp_path, origin="config.json") == []


def test_a_file_path_relative_to_the_config(tmp_path: Path, clean_sys_path: None) -> None:
    name = unique("FileEchoCalculator")
    (tmp_path / "calcs").mkdir()
    (tmp_path / "calcs" / "echo.py").write_text(MODULE.format(name=name))
    assert load_calculator_modules(["calcs/echo.py"], tmp_path, origin="config.json") == [name]
    assert default_registry.get_calculator(name) is not None


def test_a_changed_module_is_refused_until_a_restart(tmp_path: Path, clean_sys_path: None) -> None:
    name = unique("ChangingCalculator")
    path = tmp_path / f"{unique('changing_')}.py"
    path.write_text(MODULE.format(name=name))
    load_calculator_modules([path.name], tmp_path, origin="config.json")
    path.write_text(MODULE.format(name=name) + "\n# edited\n")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    with pytest.raises(PluginError, match="changed since it was imported; restart"):
        load_calculator_modules([path.name], tmp_path, origin="config.json")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import not_a_module_anywhere_xyz\n", r"ModuleNotFoundError: No module named 'not_a_module_anywhere_xyz'"),
        ("x = 1\nraise RuntimeError('boom')\n", r"RuntimeError: boom \(.*broken_\w+\.py:2\)"),
        ("import sys\nsys.exit(3)\n", r"SystemExit: 3"),
    ],
)
def test_an_import_failure_names_the_module_and_the_line(tmp_path: Path, clean_sys_path: None, source: str, expected: str) -> None:
    path = tmp_path / f"{unique('broken_')}.py"
    path.write_text(source)
    with pytest.raises(PluginError, match=rf"config.json: calculator module '{path.name}' failed to import: {expected}"):
        load_calculator_modules([path.name], tmp_path, origin="config.json")


def test_a_missing_file_and_a_name_clash_are_clear(tmp_path: Path, clean_sys_path: None) -> None:
    with pytest.raises(PluginError, match="no file"):
        load_calculator_modules(["nowhere.py"], tmp_path, origin="config.json")
    path = tmp_path / f"{unique('clash_')}.py"
    path.write_text(MODULE.format(name="DetokenizerCalculator"))
    import calculators  # noqa: F401 - the stock DetokenizerCalculator is registered

    with pytest.raises(PluginError, match="'DetokenizerCalculator' is already registered"):
        load_calculator_modules([path.name], tmp_path, origin="config.json")


def _install_distribution(site: Path, dist: str, entry_points: str) -> None:
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


def test_entry_points_name_modules_or_calculator_classes(tmp_path: Path, clean_sys_path: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real installed distribution (a dist-info folder on sys.path), found by importlib.metadata."""
    module_name, by_module = unique("ep_module_"), unique("ByModuleCalculator")
    class_module, by_class = unique("ep_class_"), unique("ByClassCalculator")
    (tmp_path / f"{module_name}.py").write_text(MODULE.format(name=by_module))
    (tmp_path / f"{class_module}.py").write_text(MODULE.format(name=unique("Unused")).replace("@default_registry.calculator", "# "))
    _install_distribution(
        tmp_path,
        unique("ovserve_user_dist_"),
        f"""
        [ovserve.calculators]
        anything = {module_name}
        {by_class} = {class_module}:Echo
        """,
    )
    sys.path.insert(0, str(tmp_path))
    monkeypatch.setattr(plugins, "_entry_points_loaded", [])
    registry = Registry()
    added = load_entry_points(registry)
    assert by_class in added and registry.get_calculator(by_class) is not None
    assert default_registry.get_calculator(by_module) is not None  # the module registered itself


def test_a_broken_entry_point_is_named(tmp_path: Path, clean_sys_path: None, monkeypatch: pytest.MonkeyPatch) -> None:
    _install_distribution(tmp_path, unique("ovserve_broken_dist_"), "[ovserve.calculators]\nbroken = no_such_module_abc:Thing\n")
    sys.path.insert(0, str(tmp_path))
    monkeypatch.setattr(plugins, "_entry_points_loaded", [])
    expected = r"entry point 'broken' \(no_such_module_abc:Thing\) of group 'ovserve.calculators' failed to import"
    with pytest.raises(PluginError, match=expected):
        load_entry_points(Registry())

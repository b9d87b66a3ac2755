"""`ovserve graph check` and `ovserve graph show` on the stock graphs, an OVMS graph and broken ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from serving.cli import main
from tests.e2e.test_ovms_config import OVMS_GRAPH as OVMS_LLM

STOCK = Path(__file__).resolve().parents[2] / "graphs" / "stock"
BROKEN = """
input_stream: "HTTP_REQUEST_PAYLOAD:input"
output_stream: "HTTP_RESPONSE_PAYLOAD:output"
node { calculator: "NoSuchCalculator" input_stream: "IN:input" output_stream: "OUT:nowhere" }
"""


def test_check_accepts_the_stock_graphs(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in STOCK.glob("*.pbtxt"))
    assert main(["graph", "check", *files]) == 0
    assert capsys.readouterr().out.count(": valid (") == len(files)


def test_check_lists_every_problem_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "graph.pbtxt"
    broken.write_text(BROKEN)
    assert main(["graph", "check", str(STOCK / "llm.pbtxt"), str(broken)]) == 1
    err = capsys.readouterr().err
    assert f"{broken}: invalid" in err and "NoSuchCalculator" in err
    assert "output" in err  # the graph output nobody produces is reported too
    assert main(["graph", "check", str(tmp_path / "missing.pbtxt")]) == 1


def test_show_mermaid_expands_ovms_subgraphs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    graph = tmp_path / "graph.pbtxt"
    graph.write_text(OVMS_LLM)
    assert main(["graph", "show", str(graph)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("flowchart TD")
    for calculator in ("TokenizerCalculator", "ContinuousBatchingLLMCalculator", "DetokenizerCalculator"):
        assert calculator in text  # HttpLLMCalculator drawn as the nodes it expands into
    assert "HttpLLMCalculator" not in text
    assert '-.->|"STOP:LLMExecutor__stop"|' in text  # the back edge, dashed (streams named per subgraph)


def test_show_dot_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "graph.dot"
    assert main(["graph", "show", str(STOCK / "llm.pbtxt"), "--format", "dot", "-o", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("digraph graph_config {") and text.rstrip().endswith("}")
    assert "style=dashed" in text and "graph_in -> n0" in text


def test_show_svg_needs_graphviz(tmp_path: Path) -> None:
    out = tmp_path / "graph.svg"
    code = main(["graph", "show", str(STOCK / "llm.pbtxt"), "--format", "svg", "-o", str(out)])
    if shutil.which("dot") is None:
        assert code == 2 and not out.exists()
    else:
        assert code == 0 and out.read_text().lstrip().startswith("<?xml")


def test_user_calculators_come_in_with_calculator_module(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.e2e.test_calculator_guide import FILES

    module = tmp_path / "cli_disclaimer.py"
    module.write_text(
        FILES["my_server/my_calcs/disclaimer.py"].replace(
            'calculator()  # registered as "DisclaimerCalculator"', 'calculator("CliDisclaimer")'
        )
    )
    graph = tmp_path / "graph.pbtxt"
    graph.write_text(FILES["my_server/tiny/graph.pbtxt"].replace("DisclaimerCalculator", "CliDisclaimer"))
    assert main(["graph", "check", str(graph)]) == 1  # unknown without the module
    assert "CliDisclaimer" in capsys.readouterr().err
    assert main(["graph", "show", "--calculator_module", str(module), str(graph)]) == 0
    assert '["CliDisclaimer<br/>disclaimer"]' in capsys.readouterr().out
    assert main(["graph", "check", "--calculator_module", str(module), str(graph)]) == 0


def test_a_module_that_fails_to_import_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "check", "--calculator_module", "no_such_calcs_pkg.x", str(STOCK / "llm.pbtxt")]) == 2
    assert "calculator module 'no_such_calcs_pkg.x' failed to import: ModuleNotFoundError" in capsys.readouterr().err

"""The pure parts of `make bench`'s real-model section (demos/benchmark/real_model*.py): ratios,
the bench.json keys, verdicts and the plot, on made-up figures (the bench itself runs minutes)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "demos" / "benchmark"
sys.path.insert(0, str(BENCHMARK))

import real_model_report as report  # noqa: E402

KEYS = {
    "real_peer_ratio_c1",
    "real_peer_ratio_c8",
    "real_peer_ratio_c32",
    "real_engine_ratio_c8",
    "real_engine_ratio_c32",
    "real_ttft_ratio_c8",
    "real_rss_ratio",
    "long_prompt_itl_p99_ratio",
}


def level(tps: float, ttft: float = 100.0, failed: int = 0) -> report.Level:
    return report.Level(output_throughput=tps, ttft_p50_ms=ttft, itl_p50_ms=10.0, completed=16, failed=failed)


FIGURES = {
    "ovserve": {1: level(60.0), 8: level(330.0, ttft=140.0), 32: level(490.0)},
    "engine": {1: level(75.0), 8: level(350.0, ttft=120.0), 32: level(600.0)},
    "llama-server": {1: level(90.0), 8: level(110.0, failed=2), 32: level(140.0)},
}
LONG = {"itl_p99_ms_with": 36.0, "itl_p99_ms_without": 30.0, "loop_lag_p99_ms": 4.0}


def test_results_has_the_issue_keys_with_targets_and_the_right_ratios() -> None:
    values = report.results(FIGURES, rss_mib={"ovserve": 600.0, "llama-server": 300.0}, long_prompt=LONG, first_burst_c8=297.0)
    assert KEYS <= set(values) and set(values) <= set(report.REAL_TARGETS)
    assert values["real_peer_ratio_c1"] == pytest.approx(60 / 90)
    assert values["real_peer_ratio_c8"] == pytest.approx(3.0)
    assert values["real_peer_ratio_c32"] == pytest.approx(3.5)
    assert values["real_engine_ratio_c8"] == pytest.approx(330 / 350)
    assert values["real_engine_ratio_c32"] == pytest.approx(490 / 600)
    assert values["real_ttft_ratio_c8"] == pytest.approx(140 / 120)
    assert values["real_rss_ratio"] == pytest.approx(2.0)
    assert values["long_prompt_itl_p99_ratio"] == pytest.approx(1.2)
    assert values["long_prompt_loop_lag_p99_ms"] == 4.0
    assert values["real_first_burst_ratio_c8"] == pytest.approx(0.9)
    verdicts = {k: report.verdict(k, v) for k, v in values.items()}
    assert verdicts["real_peer_ratio_c1"] == "NOT met" and verdicts["real_peer_ratio_c8"] == "met"
    assert verdicts["real_rss_ratio"] == "NOT met" and verdicts["long_prompt_itl_p99_ratio"] == "met"
    assert report.failed_requests(FIGURES) == {"ovserve": 0, "engine": 0, "llama-server": 2}


def test_targets_are_the_issues() -> None:
    bounds = {key: (op, bound) for key, (op, bound, _) in report.REAL_TARGETS.items()}
    assert bounds["real_peer_ratio_c1"] == (">=", 1.0)
    assert bounds["real_peer_ratio_c8"] == bounds["real_peer_ratio_c32"] == (">=", 3.0)
    assert bounds["real_engine_ratio_c8"] == bounds["real_engine_ratio_c32"] == (">=", 0.95)
    assert bounds["real_ttft_ratio_c8"] == ("<=", 1.1)
    assert bounds["real_rss_ratio"] == ("<=", 1.5)
    assert bounds["long_prompt_itl_p99_ratio"] == ("<=", 1.2)


def test_without_the_peer_its_ratios_are_not_run() -> None:
    figures = {side: FIGURES[side] for side in ("ovserve", "engine")}
    values = report.results(figures, rss_mib={"ovserve": 600.0, "llama-server": None}, long_prompt={}, first_burst_c8=None)
    for key in ("real_peer_ratio_c1", "real_peer_ratio_c8", "real_peer_ratio_c32", "real_rss_ratio", "long_prompt_itl_p99_ratio"):
        assert values[key] is None and report.verdict(key, values[key]) == "not run"
    assert values["real_engine_ratio_c8"] == pytest.approx(330 / 350)
    assert "llama-server" not in report.table(figures)


def test_ratio_refuses_missing_and_nan() -> None:
    assert report.ratio(1.0, 0.0) is None
    assert report.ratio(float("nan"), 1.0) is None
    assert report.ratio(None, 1.0) is None
    assert report.ratio(3.0, 2.0) == 1.5


def test_level_from_an_ovserve_bench_report() -> None:
    run: dict[str, Any] = {
        "output_throughput": 123.0,
        "ttft_ms": {"mean": 1.0, "p50": 45.0, "p99": 2.0},
        "itl_ms": {"mean": 1.0, "p50": 9.5, "p99": 2.0},
        "completed": 63,
        "failed": 1,
    }
    assert report.Level.from_report(run) == report.Level(123.0, 45.0, 9.5, 63, 1)
    run["ttft_ms"]["p50"] = None  # JSON null for NaN (nothing completed)
    assert report.ratio(report.Level.from_report(run).ttft_p50_ms, 1.0) is None


def test_table_and_json_figures() -> None:
    text = report.table(FIGURES)
    assert text.splitlines()[0] == "| concurrency | ovserve | engine | llama-server |"
    assert "| 8 | 330.0 tok/s, TTFT 140 ms" in text and "2 failed" in text
    raw = report.figures_json(FIGURES)
    assert raw["llama-server"]["c8"]["failed"] == 2 and set(raw["engine"]) == {"c1", "c8", "c32"}


def test_plot_writes_a_png(tmp_path: Path) -> None:
    path = report.plot(FIGURES, tmp_path / "plots" / "real.png")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000

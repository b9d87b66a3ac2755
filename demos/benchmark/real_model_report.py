"""The pure half of the real-model bench (demos/benchmark/real_model.py): figures -> ratios, the
bench.json keys with their targets, a table, and the PNG plot. Nothing here starts a process or
loads a model, so tests run it on made-up figures.

A `Level` is one server's run at one concurrency (from `ovserve bench --json`); `figures` maps
side ("ovserve", "engine", "llama-server") -> concurrency -> Level.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SIDES = ("ovserve", "engine", "llama-server")
LEVELS = (1, 8, 32)

# key: (comparison, bound, what), as suite.py's TARGETS.
REAL_TARGETS: dict[str, tuple[str, float, str]] = {
    "real_peer_ratio_c1": (">=", 1.0, "output tok/s, ovserve/llama-server, SmolLM2 GGUF c1"),
    "real_peer_ratio_c8": (">=", 3.0, "output tok/s, ovserve/llama-server, SmolLM2 GGUF c8"),
    "real_peer_ratio_c32": (">=", 3.0, "output tok/s, ovserve/llama-server, SmolLM2 GGUF c32"),
    "real_engine_ratio_c8": (">=", 0.95, "output tok/s, ovserve/engine in-process, SmolLM2 c8"),
    "real_engine_ratio_c32": (">=", 0.95, "output tok/s, ovserve/engine in-process, SmolLM2 c32"),
    "real_ttft_ratio_c8": ("<=", 1.1, "TTFT p50, ovserve/engine in-process, SmolLM2 c8"),
    "real_rss_ratio": ("<=", 1.5, "RSS after a c8 burst, ovserve (server + workers)/llama-server"),
    "long_prompt_itl_p99_ratio": ("<=", 1.2, "ITL p99 of 8 streams with/without a 6,000-token prompt arriving"),
    "long_prompt_loop_lag_p99_ms": ("<=", 10.0, "event-loop lag p99 (ms) while the 6,000-token prompt arrives"),
    "real_first_burst_ratio_c8": (">=", 0.9, "output tok/s, ovserve's first c8 burst after start / a warm one"),
}


@dataclass(frozen=True, slots=True)
class Level:
    output_throughput: float  # tok/s over the run's wall time (completed requests only)
    ttft_p50_ms: float
    itl_p50_ms: float
    completed: int
    failed: int

    @classmethod
    def from_report(cls, report: Mapping[str, Any]) -> Level:
        """One `ovserve bench --json` report (server or in-process) -> the figures kept here."""

        def number(value: Any) -> float:
            return math.nan if value is None else float(value)

        return cls(
            output_throughput=number(report["output_throughput"]),
            ttft_p50_ms=number(report["ttft_ms"]["p50"]),
            itl_p50_ms=number(report["itl_ms"]["p50"]),
            completed=int(report["completed"]),
            failed=int(report["failed"]),
        )


Figures = Mapping[str, Mapping[int, Level]]


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing or b is not a positive number."""
    if a is None or b is None or math.isnan(a) or math.isnan(b) or b <= 0:
        return None
    return a / b


def _get(figures: Figures, side: str, level: int) -> Level | None:
    return figures.get(side, {}).get(level)


def _throughput(figures: Figures, side: str, level: int) -> float | None:
    found = _get(figures, side, level)
    return None if found is None else found.output_throughput


def results(
    figures: Figures,
    *,
    rss_mib: Mapping[str, float | None],
    long_prompt: Mapping[str, float | None],
    first_burst_c8: float | None,
) -> dict[str, float | None]:
    """The bench.json keys of REAL_TARGETS. `rss_mib`: side -> RSS after the c8 burst;
    `long_prompt`: itl_p99_ms_with, itl_p99_ms_without, loop_lag_p99_ms; `first_burst_c8`:
    ovserve's output tok/s on its first c8 burst after start."""
    ovserve = _get(figures, "ovserve", 8)
    engine = _get(figures, "engine", 8)
    return {
        **{f"real_peer_ratio_c{c}": ratio(_throughput(figures, "ovserve", c), _throughput(figures, "llama-server", c)) for c in LEVELS},
        **{f"real_engine_ratio_c{c}": ratio(_throughput(figures, "ovserve", c), _throughput(figures, "engine", c)) for c in (8, 32)},
        "real_ttft_ratio_c8": ratio(ovserve.ttft_p50_ms if ovserve else None, engine.ttft_p50_ms if engine else None),
        "real_rss_ratio": ratio(rss_mib.get("ovserve"), rss_mib.get("llama-server")),
        "long_prompt_itl_p99_ratio": ratio(long_prompt.get("itl_p99_ms_with"), long_prompt.get("itl_p99_ms_without")),
        "long_prompt_loop_lag_p99_ms": long_prompt.get("loop_lag_p99_ms"),
        "real_first_burst_ratio_c8": ratio(first_burst_c8, _throughput(figures, "ovserve", 8)),
    }


def verdict(key: str, value: float | None, targets: Mapping[str, tuple[str, float, str]] = REAL_TARGETS) -> str:
    """ "met", "NOT met" or "not run" for a figure against its target (suite.py passes all of its own)."""
    if value is None:
        return "not run"
    op, bound, _ = targets[key]
    ok = value >= bound if op == ">=" else value <= bound
    return "met" if ok else "NOT met"


def failed_requests(figures: Figures) -> dict[str, int]:
    """side -> failed requests over every level (the ratios count completed requests only)."""
    return {side: sum(level.failed for level in levels.values()) for side, levels in figures.items()}


def figures_json(figures: Figures) -> dict[str, dict[str, dict[str, float | int]]]:
    """The raw figures for bench.json (levels as "c1", "c8", ...)."""
    return {
        side: {
            f"c{c}": {
                "output_throughput": level.output_throughput,
                "ttft_p50_ms": level.ttft_p50_ms,
                "itl_p50_ms": level.itl_p50_ms,
                "completed": level.completed,
                "failed": level.failed,
            }
            for c, level in sorted(levels.items())
        }
        for side, levels in figures.items()
    }


def table(figures: Figures) -> str:
    """Markdown: one row per concurrency, one column per side (tok/s, TTFT p50, ITL p50, failed)."""
    sides = [s for s in SIDES if s in figures]
    lines = ["| concurrency | " + " | ".join(sides) + " |", "| --- |" + " --- |" * len(sides)]
    for c in sorted({c for levels in figures.values() for c in levels}):
        cells = []
        for side in sides:
            level = _get(figures, side, c)
            if level is None:
                cells.append("-")
                continue
            failed = f", {level.failed} failed" if level.failed else ""
            cells.append(f"{level.output_throughput:.1f} tok/s, TTFT {level.ttft_p50_ms:.0f} ms, ITL {level.itl_p50_ms:.1f} ms{failed}")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets_table(values: Mapping[str, float | None]) -> str:
    lines = [f"{'figure':<32}{'value':>10}  {'target':<9}{'':<9}what"]
    for key, value in values.items():
        op, bound, what = REAL_TARGETS[key]
        shown = "-" if value is None else f"{value:.3f}"
        lines.append(f"{key:<32}{shown:>10}  {op + ' ' + str(bound):<9}{verdict(key, value):<9}{what}")
    return "\n".join(lines)


def plot(figures: Figures, path: Path, title: str = "SmolLM2-135M-Instruct Q4_1, same GGUF") -> Path:
    """Output tok/s and TTFT p50 against concurrency, one line per side, as a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")  # no display; set before pyplot is imported
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (tps_ax, ttft_ax) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for side in SIDES:
        levels = figures.get(side)
        if not levels:
            continue
        xs = sorted(levels)
        tps_ax.plot(xs, [levels[c].output_throughput for c in xs], marker="o", label=side)
        ttft_ax.plot(xs, [levels[c].ttft_p50_ms for c in xs], marker="o", label=side)
    for ax, label in ((tps_ax, "output tok/s"), (ttft_ax, "TTFT p50 (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(LEVELS), [str(c) for c in LEVELS])
        ax.set_xlabel("concurrency")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend()
    ttft_ax.set_yscale("log")
    ttft_ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ttft_ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    ttft_ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path

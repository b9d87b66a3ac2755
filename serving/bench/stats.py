"""Per-request timings -> benchmark metrics (vLLM's definitions), a plain-text table, and ratios.

TTFT: start of the request -> its first content chunk. ITL: the gaps between consecutive content
chunks of a request (pooled over requests). TPOT: (e2e - TTFT) / (output tokens - 1), per request.
E2EL: start -> end. Throughputs divide by the wall time of the whole run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

LATENCY_KEYS = ("ttft_ms", "tpot_ms", "itl_ms", "e2el_ms")
LATENCY_NAMES = {
    "ttft_ms": "Time to first token",
    "tpot_ms": "Time per output token",
    "itl_ms": "Inter-token latency",
    "e2el_ms": "End-to-end latency",
}


@dataclass(slots=True)
class RequestResult:
    start: float = 0.0  # perf_counter seconds
    chunk_times: list[float] = field(default_factory=list)  # arrival of each content chunk
    end: float = 0.0
    prompt_tokens: int = 0
    output_tokens: int = 0
    error: str | None = None
    text: str = ""  # the generated text, kept only when asked (vLLM's detailed result file)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def ttft(self) -> float | None:
        return self.chunk_times[0] - self.start if self.chunk_times else None

    @property
    def itls(self) -> list[float]:
        times = self.chunk_times
        return [b - a for a, b in zip(times, times[1:], strict=False)]

    @property
    def e2e(self) -> float:
        return self.end - self.start

    @property
    def tpot(self) -> float | None:
        ttft = self.ttft
        if ttft is None or self.output_tokens < 2:
            return None
        return (self.e2e - ttft) / (self.output_tokens - 1)


def percentile(values: Sequence[float], q: float) -> float:
    """q in [0, 100], linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def describe_ms(seconds: Iterable[float]) -> dict[str, float]:
    values = [s * 1000.0 for s in seconds]
    if not values:
        return {"mean": math.nan, "p50": math.nan, "p99": math.nan}
    return {"mean": sum(values) / len(values), "p50": percentile(values, 50), "p99": percentile(values, 99)}


def summarize(results: Sequence[RequestResult], duration_s: float) -> dict[str, Any]:
    """The metrics of one run (JSON-ready; NaN where nothing was measured)."""
    done = [r for r in results if r.ok]
    output_tokens = sum(r.output_tokens for r in done)
    input_tokens = sum(r.prompt_tokens for r in done)
    duration = max(duration_s, 1e-9)
    errors: dict[str, int] = {}
    for r in results:
        if r.error is not None:
            errors[r.error] = errors.get(r.error, 0) + 1
    return {
        "completed": len(done),
        "failed": len(results) - len(done),
        "duration_s": duration_s,
        "request_throughput": len(done) / duration,
        "output_throughput": output_tokens / duration,
        "total_token_throughput": (input_tokens + output_tokens) / duration,
        "total_input_tokens": input_tokens,
        "total_output_tokens": output_tokens,
        "mean_prompt_tokens": input_tokens / len(done) if done else math.nan,
        "mean_output_tokens": output_tokens / len(done) if done else math.nan,
        "ttft_ms": describe_ms(t for r in done if (t := r.ttft) is not None),
        "tpot_ms": describe_ms(t for r in done if (t := r.tpot) is not None),
        "itl_ms": describe_ms(gap for r in done for gap in r.itls),
        "e2el_ms": describe_ms(r.e2e for r in done),
        "errors": [{"error": text, "count": count} for text, count in list(errors.items())[:10]],
    }


def per_request(results: Sequence[RequestResult]) -> list[dict[str, Any]]:
    """One row per request (times in ms from the first request's start), for the JSON report."""
    origin = min((r.start for r in results), default=0.0)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000.0, 3)

    return [
        {
            "start_ms": ms(r.start - origin),
            "ttft_ms": ms(r.ttft),
            "tpot_ms": ms(r.tpot),
            "e2el_ms": ms(r.e2e),
            "chunks": len(r.chunk_times),
            "prompt_tokens": r.prompt_tokens,
            "output_tokens": r.output_tokens,
            "error": r.error,
        }
        for r in results
    ]


def compare(server: dict[str, Any], engine: dict[str, Any]) -> dict[str, float]:
    """server/engine ratios (the ITL figure is a difference in ms)."""

    def ratio(a: float, b: float) -> float:
        return a / b if b and not math.isnan(b) else math.nan

    return {
        "throughput_ratio": ratio(server["output_throughput"], engine["output_throughput"]),
        "ttft_p50_ratio": ratio(server["ttft_ms"]["p50"], engine["ttft_ms"]["p50"]),
        "itl_p50_delta_ms": server["itl_ms"]["p50"] - engine["itl_ms"]["p50"],
        "tpot_p50_ratio": ratio(server["tpot_ms"]["p50"], engine["tpot_ms"]["p50"]),
    }


def _num(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def format_table(title: str, summary: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = [
        ("Successful requests", _num(summary["completed"])),
        ("Failed requests", _num(summary["failed"])),
        ("Benchmark duration (s)", _num(summary["duration_s"])),
        ("Mean prompt tokens", _num(summary["mean_prompt_tokens"], 1)),
        ("Mean output tokens", _num(summary["mean_output_tokens"], 1)),
        ("Request throughput (req/s)", _num(summary["request_throughput"])),
        ("Output token throughput (tok/s)", _num(summary["output_throughput"])),
        ("Total token throughput (tok/s)", _num(summary["total_token_throughput"])),
    ]
    for key in LATENCY_KEYS:
        stats = summary[key]
        rows.append((f"{LATENCY_NAMES[key]} (ms) mean/p50/p99", " / ".join(_num(stats[k]) for k in ("mean", "p50", "p99"))))
    if summary.get("loop_lag_p99_ms") is not None:
        rows.append(("Server event-loop lag p99 (ms)", _num(summary["loop_lag_p99_ms"])))
    if summary.get("client_cpu_s") is not None:
        rows.append(("Client CPU during the run (s)", _num(summary["client_cpu_s"])))
    if summary.get("engine_cpu_s") is not None:
        rows.append(("Engine CPU during the run (s)", _num(summary["engine_cpu_s"])))
    if summary.get("server_cpu_s"):
        cpu = summary["server_cpu_s"]
        rows.append(("Server CPU: main / engine worker (s)", f"{_num(cpu['main'])} / {_num(cpu['children'])}"))
    width = max(len(name) for name, _ in rows) + 2
    lines = [f"{f' {title} ':=^{width + 24}}"]
    lines += [f"{name + ':':<{width}}{value:>24}" for name, value in rows]
    for error in summary["errors"]:
        lines.append(f"  error x{error['count']}: {error['error'][:200]}")
    lines.append("=" * (width + 24))
    return "\n".join(lines)


def format_comparison(server: dict[str, Any], engine: dict[str, Any], ratios: dict[str, float]) -> str:
    rows = [
        ("Output token throughput (tok/s)", server["output_throughput"], engine["output_throughput"], ratios["throughput_ratio"], "x"),
        ("TTFT p50 (ms)", server["ttft_ms"]["p50"], engine["ttft_ms"]["p50"], ratios["ttft_p50_ratio"], "x"),
        ("TPOT p50 (ms)", server["tpot_ms"]["p50"], engine["tpot_ms"]["p50"], ratios["tpot_p50_ratio"], "x"),
        ("ITL p50 (ms)", server["itl_ms"]["p50"], engine["itl_ms"]["p50"], ratios["itl_p50_delta_ms"], "+ms"),
    ]
    head = f"{'server vs in-process engine':<34}{'server':>12}{'engine':>12}{'server/engine':>16}"
    lines = [head, "-" * len(head)]
    for name, s, e, r, unit in rows:
        shown = f"{r:+.2f} ms" if unit == "+ms" else f"{_num(r, 3)}"
        lines.append(f"{name:<34}{_num(s):>12}{_num(e):>12}{shown:>16}")
    return "\n".join(lines)

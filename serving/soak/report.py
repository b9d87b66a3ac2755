"""What a soak run found: counts, latencies, failures, the RSS verdict, and its summary (text and JSON)."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

CLIENT_CLOSED = "client_closed"  # the status recorded for a request this client abandoned


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class RSSVerdict:
    peak: int | None = None
    after_warmup: int | None = None
    at_end: int | None = None
    growth: float | None = None
    warmup_s: float = 0.0
    window_s: float = 0.0
    samples: int = 0


def rss_verdict(samples: list[tuple[float, int]], seconds: float) -> RSSVerdict:
    """Warm-up: the first half of the run. The median of the window just after it is compared
    with the median of the last window (10% of the run, 5 to 30 s), so one-off allocator noise
    does not count.

    Why half: the engine worker's native memory grows while the engine meets batch shapes it has
    not seen (OpenVINO's CPU plugin keeps per-shape caches, e.g. CPU_RUNTIME_CACHE_CAPACITY
    entries); new shape combinations get rarer, so the growth slows and stops. Measured on the
    demo model: Python memory in the worker flat (tracemalloc), every per-request container at
    the live-request count, glibc in-use memory growing and held (not fragmentation), a
    fixed-shape genai loop flat for 60k requests. A leak keeps growing after half the run."""
    warmup = 0.5 * seconds
    window = max(5.0, min(30.0, 0.1 * seconds))
    verdict = RSSVerdict(warmup_s=warmup, window_s=window, samples=len(samples))
    if not samples:
        return verdict
    verdict.peak = max(rss for _, rss in samples)
    end = samples[-1][0]
    first = [rss for t, rss in samples if warmup <= t < warmup + window]
    last = [rss for t, rss in samples if t >= end - window]
    if first and last and end - window >= warmup:
        verdict.after_warmup = int(statistics.median(first))
        verdict.at_end = int(statistics.median(last))
        verdict.growth = verdict.at_end / verdict.after_warmup - 1
    return verdict


@dataclass
class Report:
    base_url: str
    seconds: float
    clients: int
    sent: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    by_kind: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)  # the first few failures, in words
    rss: RSSVerdict = field(default_factory=RSSVerdict)
    rss_max_growth: float = 0.10
    live_after_s: float | None = None  # how long the engines took to show no live request
    live_left: dict[str, Any] = field(default_factory=dict)
    restarts: int = 0
    server_log: dict[str, int] = field(default_factory=dict)
    timeline: list[tuple[int, int, int]] = field(default_factory=list)  # (s, server RSS, children's RSS)

    def fail(self, category: str, message: str) -> None:
        self.failures[category] += 1
        if len(self.examples) < 20:
            self.examples.append(f"{category}: {message}")

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict[str, Any]:
        every = [x for values in self.latencies.values() for x in values]
        rss = self.rss
        return {
            "passed": self.passed,
            "base_url": self.base_url,
            "seconds": self.seconds,
            "clients": self.clients,
            "requests_sent": sum(self.sent.values()),
            "sent": dict(sorted(self.sent.items())),
            "responses": dict(sorted(self.statuses.items())),
            "responses_by_kind": {k: dict(sorted(v.items())) for k, v in sorted(self.by_kind.items())},
            "latency_s": {
                "all": {"p50": percentile(every, 0.5), "p99": percentile(every, 0.99)},
                **{k: {"p50": percentile(v, 0.5), "p99": percentile(v, 0.99)} for k, v in sorted(self.latencies.items())},
            },
            "failures": dict(self.failures),
            "failure_examples": self.examples,
            "rss": {
                "peak_bytes": rss.peak,
                "after_warmup_bytes": rss.after_warmup,
                "at_end_bytes": rss.at_end,
                "growth": rss.growth,
                "max_growth": self.rss_max_growth,
                "warmup_s": rss.warmup_s,
                "window_s": rss.window_s,
                "samples": rss.samples,
                "timeline_s_server_children": self.timeline,
            },
            "engine": {"live_requests_cleared_after_s": self.live_after_s, "live_left": self.live_left, "restarts": self.restarts},
            "server_log": self.server_log,
        }

    def format(self) -> str:
        data = self.as_dict()
        mib = 2**20
        lines = [f"ovserve soak: {self.seconds:.0f} s against {self.base_url}, {self.clients} clients"]
        lines.append(f"requests sent: {data['requests_sent']}")
        for kind, count in data["sent"].items():
            lat = data["latency_s"].get(kind, {})
            codes = ", ".join(f"{c}: {n}" for c, n in data["responses_by_kind"].get(kind, {}).items())
            lines.append(f"  {kind:<22} {count:>7}   p50 {ms(lat.get('p50'))}  p99 {ms(lat.get('p99'))}   [{codes}]")
        lines.append("responses: " + ", ".join(f"{code}: {n}" for code, n in data["responses"].items()))
        overall = data["latency_s"]["all"]
        lines.append(f"latency (all requests): p50 {ms(overall['p50'])}, p99 {ms(overall['p99'])}")
        rss = self.rss
        if rss.peak is not None:
            growth = "n/a (run too short)" if rss.growth is None else f"{rss.growth:+.1%}"
            after = "n/a" if rss.after_warmup is None else f"{rss.after_warmup / mib:.0f} MiB"
            end = "n/a" if rss.at_end is None else f"{rss.at_end / mib:.0f} MiB"
            lines.append(
                f"RSS of the server tree: peak {rss.peak / mib:.0f} MiB; after warm-up ({rss.warmup_s:.0f} s) {after}, "
                f"at the end {end} (medians of {rss.window_s:.0f} s); growth {growth} (limit {self.rss_max_growth:+.0%})"
            )
        else:
            lines.append("RSS: not measured (server process not found; pass --server-pid)")
        live = "never cleared" if self.live_after_s is None else f"0 after {self.live_after_s:.1f} s"
        lines.append(f"engine: live requests once traffic stopped: {live}; worker restarts: {self.restarts}")
        if self.server_log:
            lines.append("server log: " + ", ".join(f"{k}: {v}" for k, v in self.server_log.items()))
        if self.failures:
            lines.append("FAILED: " + ", ".join(f"{k}: {v}" for k, v in self.failures.items()))
            lines.extend(f"  - {example}" for example in self.examples)
        else:
            lines.append("PASSED")
        return "\n".join(lines)


def ms(value: float | None) -> str:
    return "   n/a" if value is None else f"{value * 1000:6.0f} ms"

"""Event-loop lag: how late a 10 ms timer fires. A busy or blocked loop delays every request,
so this is the first number to look at when the server feels slow."""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import deque
from collections.abc import AsyncIterator

from aiohttp import web

from graphs.errors import InvalidRequestError

INTERVAL_S = 0.01
# Histogram bounds (seconds) for /metrics: a healthy loop stays under a few ms.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class LoopLagMonitor:
    def __init__(self, keep: int = 120_000) -> None:  # 20 minutes at 100 samples a second
        self.samples: deque[tuple[float, float]] = deque(maxlen=keep)  # (monotonic time, lag s)
        # Since start, for the Prometheus histogram (the window above forgets; counters must not).
        self.bucket_counts = [0] * (len(BUCKETS) + 1)  # the last one: above every bound
        self.total_s = 0.0

    def record(self, lag: float) -> None:
        self.samples.append((time.monotonic(), lag))
        self.bucket_counts[bisect.bisect_left(BUCKETS, lag)] += 1
        self.total_s += lag

    def histogram(self) -> tuple[list[tuple[str, float]], float]:
        """Cumulative (le, count) buckets ending with +Inf, and the sum of all lags."""
        running, buckets = 0, []
        for bound, count in zip((*map(str, BUCKETS), "+Inf"), self.bucket_counts, strict=True):
            running += count
            buckets.append((bound, float(running)))
        return buckets, self.total_s

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            await asyncio.sleep(INTERVAL_S)
            self.record(max(0.0, time.monotonic() - started - INTERVAL_S))

    def summary(self, since: float | None = None) -> dict[str, float | int]:
        lags = sorted(lag for t, lag in self.samples if since is None or t >= since)

        def pct(q: float) -> float:
            return round(lags[min(len(lags) - 1, int(q * len(lags)))] * 1000, 3) if lags else 0.0

        return {
            "now": time.monotonic(),
            "samples": len(lags),
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": round(lags[-1] * 1000, 3) if lags else 0.0,
        }


LOOP_LAG = web.AppKey("loop_lag", LoopLagMonitor)


async def loop_lag_ctx(app: web.Application) -> AsyncIterator[None]:
    monitor = app[LOOP_LAG]
    task = asyncio.get_running_loop().create_task(monitor.run(), name="loop-lag")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def loop_lag_handler(request: web.Request) -> web.Response:
    """`GET /debug/loop_lag[?since=T]`: lag percentiles over samples after server time T."""
    since_text = request.query.get("since")
    try:
        since = float(since_text) if since_text is not None else None
    except ValueError:
        raise InvalidRequestError(f"since must be a number (server monotonic seconds), got {since_text!r}", param="since") from None
    return web.json_response(request.app[LOOP_LAG].summary(since))


def install(app: web.Application) -> None:
    app[LOOP_LAG] = LoopLagMonitor()
    app.cleanup_ctx.append(loop_lag_ctx)
    app.router.add_get("/debug/loop_lag", loop_lag_handler)

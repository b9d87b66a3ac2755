"""`GET /metrics` in the Prometheus text format (prometheus-client), one registry per app.

So far: HTTP requests by endpoint, model and status; requests in flight; servable states;
engine requests running and KV-cache figures as the engine worker last reported them; and the
event loop's lag. (Token counters and latency histograms come with the operations issue.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from serving.loop_lag import LOOP_LAG
from serving.state import SERVABLES


class _LiveState(Collector):
    """Read at scrape time: servable states, engine figures, loop lag."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterator[Any]:
        state = GaugeMetricFamily("ovserve_servable_state", "1 for the state each servable is in", labels=["model", "state"])
        running = GaugeMetricFamily("ovserve_engine_running_requests", "requests in the engine worker", labels=["model"])
        in_client = GaugeMetricFamily("ovserve_engine_active_requests", "requests this server awaits from the engine", labels=["model"])
        for servable in self.app[SERVABLES]:
            state.add_metric([servable.name, servable.state.value], 1)
            for resource in servable.stats()["resources"].values():
                if "running" in resource:
                    running.add_metric([servable.name], float(resource["running"]))
                if "active_requests" in resource:
                    in_client.add_metric([servable.name], float(resource["active_requests"]))
        yield state
        yield running
        yield in_client
        lag = self.app[LOOP_LAG].summary()
        family = GaugeMetricFamily("ovserve_event_loop_lag_seconds", "event-loop lag since start", labels=["quantile"])
        family.add_metric(["0.5"], lag["p50_ms"] / 1000)
        family.add_metric(["0.99"], lag["p99_ms"] / 1000)
        yield family


class Metrics:
    def __init__(self, app: web.Application) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("ovserve_http_requests", "HTTP requests answered", ["endpoint", "model", "status"], registry=self.registry)
        self.in_flight = Gauge("ovserve_http_requests_in_flight", "HTTP requests being answered", registry=self.registry)
        self.registry.register(_LiveState(app))


METRICS = web.AppKey("metrics", Metrics)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    metrics: Metrics = request.app[METRICS]
    if request.path == "/metrics":
        return await handler(request)
    metrics.in_flight.inc()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        metrics.in_flight.dec()
        route = request.match_info.route.resource
        endpoint = route.canonical if route is not None else "unmatched"
        metrics.requests.labels(endpoint, request.get("ovserve_model", ""), str(status)).inc()


async def metrics_handler(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def install(app: web.Application) -> None:
    app[METRICS] = Metrics(app)
    app.middlewares.insert(0, metrics_middleware)
    app.router.add_get("/metrics", metrics_handler)

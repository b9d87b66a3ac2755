"""OVMS's metric families (serving/metrics_catalog.py `OVMS_FAMILIES`), from the measurements
serving/metrics.py already takes, so OVMS dashboards and `metrics_list` work unchanged.

Two things differ from prometheus-client's habits and are OVMS's: counters are exposed without
`_total` (`render` writes them), and durations are microseconds, in OVMS's buckets.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from serving.metrics_catalog import OVMS_BY_NAME

# OVMS's bucket bounds (us): floor(10 * 1.8**i), 33 of them.
US_BUCKETS = tuple(float(math.floor(10 * 1.8**i)) for i in range(33))
_US = 1_000_000
_V3_SUFFIXES = ("/chat/completions", "/completions", "/embeddings", "/rerank")
_KSERVE_METHODS = {"/ready": "ModelReady", "/infer": "ModelInfer"}


def ovms_method(endpoint: str, streamed: bool) -> tuple[str, str] | None:
    """(api, method) of a REST route as OVMS labels it; None for routes OVMS does not count."""
    if endpoint.startswith(("/v3/", "/v1/")) and endpoint.endswith(_V3_SUFFIXES):
        return "V3", "Stream" if streamed else "Unary"
    if endpoint.startswith("/v2/models/"):
        for suffix, method in _KSERVE_METHODS.items():
            if endpoint.endswith(suffix):
                return "KServe", method
        return "KServe", "ModelMetadata"
    return None


class OvmsMetrics:
    """The recorded OVMS families (None when not selected) and the scrape-time gauges."""

    def __init__(self, registry: CollectorRegistry, wanted: frozenset[str]) -> None:
        def make(name: str, **extra: Any) -> Any:
            if name not in wanted:
                return None
            family = OVMS_BY_NAME[name]
            kind = Counter if family.kind == "counter" else Histogram
            return kind(name, family.help, list(family.labels), registry=registry, **extra)

        self.wanted = wanted
        self.success: Counter | None = make("ovms_requests_success")
        self.fail: Counter | None = make("ovms_requests_fail")
        self.accepted: Counter | None = make("ovms_requests_accepted")
        self.rejected: Counter | None = make("ovms_requests_rejected")
        self.graph_error: Counter | None = make("ovms_graph_error")
        self.responses: Counter | None = make("ovms_responses")
        self.processing: Histogram | None = make("ovms_graph_processing_time_us", buckets=US_BUCKETS)
        self.request_time: Histogram | None = make("ovms_request_time_us", buckets=US_BUCKETS)
        self.inference: Histogram | None = make("ovms_inference_time_us", buckets=US_BUCKETS)
        self.wait: Histogram | None = make("ovms_wait_for_infer_req_time_us", buckets=US_BUCKETS)

    def http_done(self, endpoint: str, model: str, status: int, streamed: bool, seconds: float) -> None:
        """One answered HTTP request (model: the name asked for, empty when none resolved)."""
        kind = ovms_method(endpoint, streamed)
        if kind is None or not model:
            return
        api, method = kind
        labels = (api, "REST", method, model)
        if method in ("ModelReady", "ModelMetadata"):  # OVMS counts these as requests to a graph
            counter = self.success if status < 400 else self.fail
            if counter is not None:
                counter.labels(*labels).inc()
            return
        # A generation, embeddings, rerank or infer request: a graph run (OVMS checks LLM requests
        # inside the graph, so a refused body is a graph error, not a rejection).
        if self.accepted is not None:
            self.accepted.labels(*labels).inc()
        if status >= 400:
            if self.graph_error is not None:
                self.graph_error.labels(*labels).inc()
            return
        if self.responses is not None:
            self.responses.labels(*labels).inc()
        if self.processing is not None:
            self.processing.labels(method, model).observe(seconds * _US)
        if self.request_time is not None:
            self.request_time.labels("REST", model).observe(seconds * _US)

    def engine_steps(self, model: str, step_seconds: Sequence[float], queue_seconds: Sequence[float]) -> None:
        if self.inference is not None:
            inference = self.inference.labels(model)
            for seconds in step_seconds:
                inference.observe(seconds * _US)
        if self.wait is not None:
            wait = self.wait.labels(model)
            for seconds in queue_seconds:
                wait.observe(seconds * _US)

    def live(self, servables: Iterable[Any]) -> Iterator[Metric]:
        """Gauges read at scrape time from the servables (serving.servable.Servable)."""
        gauges = {
            name: GaugeMetricFamily(name, OVMS_BY_NAME[name].help, labels=["name"])
            for name in (
                "ovms_current_requests",
                "ovms_current_graphs",
                "ovms_streams",
                "ovms_infer_req_queue_size",
                "ovms_infer_req_active",
            )
            if name in self.wanted
        }
        if not gauges:
            return
        for servable in servables:
            values = {"ovms_current_requests": servable.active, "ovms_current_graphs": servable.active}
            for stats in servable.stats()["resources"].values():
                if "running" in stats:  # an LLM engine: one inference stream and request
                    values["ovms_streams"] = values["ovms_infer_req_queue_size"] = 1
                    values["ovms_infer_req_active"] = 1 if stats.get("active_requests", 0) else 0
            for name, gauge in gauges.items():
                if name in values:
                    gauge.add_metric([servable.name], float(values[name]))
        yield from gauges.values()


class _One:
    def __init__(self, metric: Metric) -> None:
        self.metric = metric

    def collect(self) -> list[Metric]:
        return [self.metric]


def _ovms_counter(metric: Metric) -> bytes:
    """An OVMS counter as OVMS writes it: the family's own name on every sample, no `_total`."""
    lines = [f"# HELP {metric.name} {metric.documentation}", f"# TYPE {metric.name} counter"]
    for sample in metric.samples:
        if sample.name != metric.name + "_total":
            continue  # no `_created` series
        labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(sample.labels.items()))
        lines.append(
            f"{metric.name}{{{labels}}} {floatToGoString(sample.value)}" if labels else f"{metric.name} {floatToGoString(sample.value)}"
        )
    return ("\n".join(lines) + "\n").encode()


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def render(registry: CollectorRegistry) -> bytes:
    """The Prometheus text format of `registry`, with OVMS's counters written as OVMS does."""
    parts = []
    for metric in registry.collect():
        if metric.type == "counter" and metric.name in OVMS_BY_NAME:
            parts.append(_ovms_counter(metric))
        else:
            parts.append(generate_latest(_One(metric)))  # type: ignore[arg-type]
    return b"".join(parts)

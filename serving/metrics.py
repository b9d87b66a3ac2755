"""`GET /metrics` in the Prometheus text format (prometheus-client), one registry per app.

Off unless `--metrics_enable` or config.json's `monitoring.metrics.enable` (as OVMS): then there
is no `/metrics` route (a 404) and no per-request metric work at all. `--metrics_list` (or
`monitoring.metrics.metrics_list`) keeps only the named families; the others are not recorded.
The families, their labels and meaning: serving/metrics_catalog.py and docs/operations.md "Metrics".

Where the figures come from:
- HTTP counts, in-flight requests and end-to-end durations: this module's middleware.
- Token counts, time to first token, time per output token: the LLM node keeps a
  `RequestRecord` per request when the middleware put a `RequestTelemetry` into the request's
  context, and hands it to `Metrics.request_done` when the request ends.
- Image preprocessing (each image's fetch and decoding) and images per request: the
  TokenizerCalculator of a vision servable, through the same `RequestTelemetry` sink.
- Engine step and queue durations: the engine client hands each worker message's durations to
  `Metrics.engine_steps` (the worker measures them; see calculators/llm/engine/cb_loop.py `stats()`).
- Gauges (servable state, waiting/running requests, KV cache, admission), the loop-lag histogram
  and the admission's rejection counts: read at scrape time.

OVMS's families (serving/metrics_ovms.py, selectable by `metrics_list` as in OVMS) and vLLM's
names (serving/metrics_vllm.py, always on) are fed from these same measurements.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from calculators.llm.telemetry import RequestRecord
from serving.admission import ADMISSION
from serving.frontend import CONTEXT
from serving.loading import metrics_settings
from serving.loop_lag import LOOP_LAG
from serving.metrics_catalog import BY_NAME, selected
from serving.metrics_ovms import OvmsMetrics, render
from serving.metrics_vllm import VllmMetrics
from serving.state import SERVABLES, SETTINGS

# Bucket bounds (seconds).
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_PER_TOKEN = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)
_STEP = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_IMAGE = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)  # a data URL ~1 ms; a slow download: s
_IMAGES = (1, 2, 3, 4, 6, 8, 12, 16, 32, 64)

# Routes whose requests get an end-to-end duration (and the /v1 aliases).
_TIMED_SUFFIXES = ("/chat/completions", "/completions", "/embeddings", "/rerank", "/messages", "/responses", "/api/chat", "/api/generate")
_ENGINE_EVENTS = ("added", "finished", "cancelled", "failed")
_REJECT_REASONS = ("queue_full", "timeout", "not_reading")
_RECORDED: dict[str, type[Any]] = {"counter": Counter, "gauge": Gauge, "histogram": Histogram}


class _LiveState(Collector):
    """Read at scrape time: servable states, engine figures, loop lag."""

    def __init__(self, app: web.Application, wanted: frozenset[str], ovms: OvmsMetrics) -> None:
        self.app = app
        self.wanted = wanted
        self.ovms = ovms

    def _family(self, name: str) -> Any:
        if name not in self.wanted:
            return None
        family = BY_NAME[name]
        kind = CounterMetricFamily if family.kind == "counter" else GaugeMetricFamily  # the catalogue's type
        return kind(name.removesuffix("_total"), family.help, labels=list(family.labels))

    def collect(self) -> Iterator[Any]:
        state = self._family("ovserve_servable_state")
        waiting = self._family("ovserve_engine_requests_waiting")
        running = self._family("ovserve_engine_requests_running")
        kv_usage = self._family("ovserve_kv_cache_usage_ratio")
        kv_bytes = self._family("ovserve_kv_cache_size_bytes")
        events = self._family("ovserve_engine_requests_total")
        preemptions = self._family("ovserve_engine_preemptions_total")
        for servable in self.app[SERVABLES]:
            model = servable.name
            if state is not None:
                state.add_metric([model, servable.state.value], 1)
            for stats in servable.stats()["resources"].values():
                if "running" not in stats:  # not an engine
                    continue
                scheduled = min(stats.get("scheduled", stats["running"]), stats.get("active_requests", 0))
                if running is not None:
                    running.add_metric([model], float(scheduled))
                if waiting is not None:
                    waiting.add_metric([model], float(max(0, stats.get("active_requests", 0) - scheduled)))
                if kv_usage is not None and "kv_usage" in stats:
                    kv_usage.add_metric([model], float(stats["kv_usage"]))
                if kv_bytes is not None and "kv_bytes" in stats:
                    kv_bytes.add_metric([model], float(stats["kv_bytes"]))
                if events is not None:
                    for event in _ENGINE_EVENTS:
                        events.add_metric([model, event], float(stats.get(event, 0)))
                if preemptions is not None:  # the stateful pipeline (LM) never preempts
                    preemptions.add_metric([model], float(stats.get("preempted", 0)))
        yield from (f for f in (state, waiting, running, kv_usage, kv_bytes, events, preemptions) if f is not None)
        admission = self.app.get(ADMISSION)
        if admission is not None:
            if (running_slots := self._family("ovserve_admission_requests_running")) is not None:
                running_slots.add_metric([], float(admission.running))
                yield running_slots
            if (queue := self._family("ovserve_admission_queue_length")) is not None:
                queue.add_metric([], float(admission.queued))
                yield queue
            if (rejected := self._family("ovserve_requests_rejected_total")) is not None:
                for reason in _REJECT_REASONS:
                    rejected.add_metric([reason], float(admission.rejected[reason]))
                yield rejected
        if "ovserve_event_loop_lag_seconds" in self.wanted:
            buckets, total = self.app[LOOP_LAG].histogram()
            lag = HistogramMetricFamily("ovserve_event_loop_lag_seconds", BY_NAME["ovserve_event_loop_lag_seconds"].help)
            lag.add_metric([], buckets, total)
            yield lag
        servables: list[Any] = [*self.app[SERVABLES]]
        yield from self.ovms.live(servables)
        yield from VllmMetrics.live(servables)


class Metrics:
    """The app's registry, its recorded metrics (None when not wanted), and the telemetry sink
    the LLM nodes and engine clients report to (calculators.llm.telemetry.TelemetrySink)."""

    def __init__(self, app: web.Application, names: Sequence[str] = ()) -> None:
        """`names`: the families to serve (empty: all), already checked by loading.metrics_settings."""
        # No `_created` series beside each counter and histogram (prometheus-client's switch is
        # process-wide; this process serves one app).
        disable_created_metrics()
        wanted = selected(names)
        self.registry = CollectorRegistry()

        def make(name: str, **extra: Any) -> Any:
            if name not in wanted:
                return None
            family = BY_NAME[name]
            kind = _RECORDED[family.kind]  # the catalogue's type
            return kind(name, family.help, list(family.labels), registry=self.registry, **extra)

        self.requests: Counter | None = make("ovserve_http_requests_total")
        self.in_flight: Gauge | None = make("ovserve_http_requests_in_flight")
        self.duration: Histogram | None = make("ovserve_request_duration_seconds", buckets=_LATENCY)
        self.prompt_tokens: Counter | None = make("ovserve_prompt_tokens_total")
        self.generated_tokens: Counter | None = make("ovserve_generated_tokens_total")
        self.ttft: Histogram | None = make("ovserve_time_to_first_token_seconds", buckets=_LATENCY)
        self.tpot: Histogram | None = make("ovserve_time_per_output_token_seconds", buckets=_PER_TOKEN)
        self.queue: Histogram | None = make("ovserve_request_queue_seconds", buckets=_LATENCY)
        self.step: Histogram | None = make("ovserve_engine_step_seconds", buckets=_STEP)
        self.image_seconds: Histogram | None = make("ovserve_image_preprocess_seconds", buckets=_IMAGE)
        self.images: Histogram | None = make("ovserve_images_per_request", buckets=_IMAGES)
        self.image_generation: Histogram | None = make("ovserve_image_generation_seconds", buckets=_LATENCY)
        self.image_step: Histogram | None = make("ovserve_image_generation_step_seconds", buckets=_STEP)
        self.speech_synthesis: Histogram | None = make("ovserve_text_to_speech_seconds", buckets=_LATENCY)
        self.speech: Histogram | None = make("ovserve_speech_to_text_seconds", buckets=_LATENCY)
        self.ovms = OvmsMetrics(self.registry, wanted)
        self.vllm = VllmMetrics(self.registry)
        # vLLM's names are always served: every request and step is recorded with metrics on.
        self.per_request = True
        self.per_step = True
        self.registry.register(_LiveState(app, wanted, self.ovms))

    # -- calculators.llm.telemetry.TelemetrySink ----------------------------------------------
    def request_done(self, model: str, record: RequestRecord) -> None:
        if self.prompt_tokens is not None:
            self.prompt_tokens.labels(model).inc(record.prompt_tokens)
        if self.generated_tokens is not None:
            self.generated_tokens.labels(model).inc(record.generated_tokens)
        if self.ttft is not None:
            self.ttft.labels(model).observe(record.time_to_first_token)
        if self.tpot is not None and (tpot := record.time_per_output_token) is not None:
            self.tpot.labels(model).observe(tpot)
        self.vllm.request_done(model, record)

    def images_loaded(self, model: str, seconds: Sequence[float]) -> None:
        if self.image_seconds is not None:
            histogram = self.image_seconds.labels(model)
            for value in seconds:
                histogram.observe(value)
        if self.images is not None:
            self.images.labels(model).observe(len(seconds))

    def speech_transcribed(self, model: str, seconds: float) -> None:
        """One speech-to-text generation (calculators/audio): the engine's time."""
        if self.speech is not None:
            self.speech.labels(model).observe(seconds)

    def images_generated(self, model: str, seconds: float, step_seconds: Sequence[float]) -> None:
        """An image request's engine time and each of its denoising steps (calculators/image)."""
        if self.image_generation is not None:
            self.image_generation.labels(model).observe(seconds)
        if self.image_step is not None:
            histogram = self.image_step.labels(model)
            for step in step_seconds:
                histogram.observe(step)

    def speech_generated(self, model: str, seconds: float) -> None:
        """One text-to-speech generation (calculators/audio/speech_calculator.py): the engine's time."""
        if self.speech_synthesis is not None:
            self.speech_synthesis.labels(model).observe(seconds)

    def engine_steps(self, model: str, step_seconds: Sequence[float], queue_seconds: Sequence[float]) -> None:
        if self.step is not None and step_seconds:
            step = self.step.labels(model)
            for seconds in step_seconds:
                step.observe(seconds)
        if self.queue is not None and queue_seconds:
            queue = self.queue.labels(model)
            for seconds in queue_seconds:
                queue.observe(seconds)
        self.ovms.engine_steps(model, step_seconds, queue_seconds)
        self.vllm.engine_steps(model, queue_seconds)


METRICS = web.AppKey("metrics", Metrics)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Counts every request (those refused by auth too) by route, model and status; times the
    generation endpoints. The model label is the request context's (serving.frontend)."""
    metrics: Metrics = request.app[METRICS]
    if request.path == "/metrics":
        return await handler(request)
    ctx = request[CONTEXT]  # set by the context middleware, outside this one (serving.middleware)
    if metrics.in_flight is not None:
        metrics.in_flight.inc()
    status = 500
    streamed = False
    try:
        response = await handler(request)
        status = response.status
        streamed = response.content_type == "text/event-stream"
        return response
    finally:
        if metrics.in_flight is not None:
            metrics.in_flight.dec()
        route = request.match_info.route.resource
        endpoint = route.canonical if route is not None else "unmatched"
        model = ctx.model
        if metrics.requests is not None:
            metrics.requests.labels(endpoint, model, str(status)).inc()
        seconds = time.perf_counter() - ctx.arrived
        if metrics.duration is not None and model and status < 400 and endpoint.endswith(_TIMED_SUFFIXES):
            metrics.duration.labels(model, endpoint).observe(seconds)
        # KServe's ready and metadata routes resolve no model in the context: OVMS names it anyway.
        metrics.ovms.http_done(endpoint, model or request.match_info.get("name", ""), status, streamed, seconds)


async def metrics_handler(request: web.Request) -> web.Response:
    body = render(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def install(app: web.Application) -> Metrics | None:
    """Serve /metrics if metrics are enabled (flag or config.json); returns them (None when
    off). serving.middleware places metrics_middleware."""
    enabled, names = metrics_settings(app[SETTINGS])
    if not enabled:
        return None
    metrics = app[METRICS] = Metrics(app, names)
    app.router.add_get("/metrics", metrics_handler)
    return metrics

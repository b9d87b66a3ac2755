"""vLLM's metric names (serving/metrics_catalog.py `VLLM_FAMILIES`), always served with metrics
on, from the same records and engine figures as ovserve's own families: the Gateway API Inference
Extension's endpoint picker reads `vllm:num_requests_waiting`, `vllm:kv_cache_usage_perc` and
`vllm:lora_requests_info`; KEDA rules and vLLM dashboards read the rest.

`engine` is always "0" (one engine per servable); `model_name` is the servable's name.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from calculators.llm.telemetry import RequestRecord
from serving.metrics_catalog import VLLM_BY_NAME

ENGINE = "0"
# vLLM's bucket bounds (seconds, tokens), so its dashboards' quantiles read the same.
_TTFT = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
_TPOT = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0)
_LATENCY = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)
_TOKENS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000)


def _help(name: str) -> str:
    return VLLM_BY_NAME[name].help


class VllmMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        def make(kind: type[Any], name: str, **extra: Any) -> Any:
            family = VLLM_BY_NAME[name]
            return kind(name, family.help, list(family.labels), registry=registry, **extra)

        self.prompt_tokens: Counter = make(Counter, "vllm:prompt_tokens_total")
        self.generation_tokens: Counter = make(Counter, "vllm:generation_tokens_total")
        self.success: Counter = make(Counter, "vllm:request_success_total")
        self.ttft: Histogram = make(Histogram, "vllm:time_to_first_token_seconds", buckets=_TTFT)
        self.tpot = tuple(
            make(Histogram, name, buckets=_TPOT)
            for name in (
                "vllm:time_per_output_token_seconds",
                "vllm:inter_token_latency_seconds",
                "vllm:request_time_per_output_token_seconds",
            )
        )
        self.e2e: Histogram = make(Histogram, "vllm:e2e_request_latency_seconds", buckets=_LATENCY)
        self.queue: Histogram = make(Histogram, "vllm:request_queue_time_seconds", buckets=_LATENCY)
        self.request_prompt: Histogram = make(Histogram, "vllm:request_prompt_tokens", buckets=_TOKENS)
        self.request_generation: Histogram = make(Histogram, "vllm:request_generation_tokens", buckets=_TOKENS)

    def request_done(self, model: str, record: RequestRecord) -> None:
        labels = (model, ENGINE)
        self.prompt_tokens.labels(*labels).inc(record.prompt_tokens)
        self.generation_tokens.labels(*labels).inc(record.generated_tokens)
        # The engine's finish reason, or "abort" for a request the server stopped (client gone,
        # stop string matched on our side, timeout).
        self.success.labels(*labels, record.finish_reason or "abort").inc()
        self.ttft.labels(*labels).observe(record.time_to_first_token)
        if (tpot := record.time_per_output_token) is not None:
            for histogram in self.tpot:  # genai gives no per-token times: one mean per request
                histogram.labels(*labels).observe(tpot)
        self.e2e.labels(*labels).observe(record.last_token - record.arrived)
        self.request_prompt.labels(*labels).observe(record.prompt_tokens)
        self.request_generation.labels(*labels).observe(record.generated_tokens)

    def engine_steps(self, model: str, queue_seconds: Sequence[float]) -> None:
        queue = self.queue.labels(model, ENGINE)
        for seconds in queue_seconds:
            queue.observe(seconds)

    @staticmethod
    def live(servables: Iterable[Any]) -> Iterator[Metric]:
        """Engine gauges, preemptions and info gauges, read at scrape time (serving.servable.Servable)."""
        labels = ["model_name", "engine"]
        running = GaugeMetricFamily("vllm:num_requests_running", _help("vllm:num_requests_running"), labels=labels)
        waiting = GaugeMetricFamily("vllm:num_requests_waiting", _help("vllm:num_requests_waiting"), labels=labels)
        kv_usage = GaugeMetricFamily("vllm:kv_cache_usage_perc", _help("vllm:kv_cache_usage_perc"), labels=labels)
        preemptions = CounterMetricFamily("vllm:num_preemptions", _help("vllm:num_preemptions_total"), labels=labels)
        lora, cache = (
            GaugeMetricFamily(n, _help(n), labels=list(VLLM_BY_NAME[n].labels))
            for n in ("vllm:lora_requests_info", "vllm:cache_config_info")
        )
        for servable in servables:
            for stats in servable.stats()["resources"].values():
                if "running" not in stats:  # not an engine
                    continue
                ours = [servable.name, ENGINE]
                scheduled = min(stats.get("scheduled", stats["running"]), stats.get("active_requests", 0))
                running.add_metric(ours, float(scheduled))
                waiting.add_metric(ours, float(max(0, stats.get("active_requests", 0) - scheduled)))
                kv_usage.add_metric(ours, float(stats.get("kv_usage", 0.0)))
                preemptions.add_metric(ours, float(stats.get("preempted", 0)))
                if "kv_bytes" in stats:
                    cache.add_metric([ENGINE, servable.name, str(stats["kv_bytes"])], 1.0)
                if servable.adapters:
                    # genai gives no per-adapter queue figure: every adapter of an engine that runs
                    # requests counts as running, none waits; max_lora 1 because the worker gives
                    # adapters turns, one per step (calculators/llm/lora.py).
                    active = ",".join(servable.adapters) if stats.get("active_requests", 0) else ""
                    lora.add_metric(["1", "", active], time.time())
        yield from (running, waiting, kv_usage, preemptions, cache)
        if lora.samples:  # as vLLM: only with LoRA adapters configured
            yield lora

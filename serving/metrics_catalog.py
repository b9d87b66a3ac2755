"""The metric families `/metrics` serves: names (as exposed), types, labels, meaning.

Kept apart from serving/metrics.py (no prometheus-client import) so that config checks can
name the valid families. docs/operations.md's "Metrics" documents the same list.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Family:
    name: str  # as exposed (counters end in _total)
    kind: str  # counter | gauge | histogram
    labels: tuple[str, ...]
    help: str


FAMILIES: tuple[Family, ...] = (
    Family("ovserve_http_requests_total", "counter", ("endpoint", "model", "status"), "HTTP requests answered"),
    Family("ovserve_http_requests_in_flight", "gauge", (), "HTTP requests being answered"),
    Family(
        "ovserve_request_duration_seconds",
        "histogram",
        ("model", "endpoint"),
        "end-to-end time of successful generation, embeddings and rerank requests, from arrival to the last byte",
    ),
    Family("ovserve_servable_state", "gauge", ("model", "state"), "1 for the state each servable is in"),
    Family("ovserve_event_loop_lag_seconds", "gauge", ("quantile",), "event-loop lag since start"),
    Family(
        "ovserve_engine_requests_waiting",
        "gauge",
        ("model",),
        "requests submitted to the engine and not scheduled in its last step (queued in the engine or on their way to it)",
    ),
    Family("ovserve_engine_requests_running", "gauge", ("model",), "requests the engine scheduled in its last step"),
    Family("ovserve_kv_cache_usage_ratio", "gauge", ("model",), "KV-cache use in the engine's last step, 0..1 (0 when idle)"),
    Family("ovserve_kv_cache_size_bytes", "gauge", ("model",), "KV cache allocated by the engine"),
    Family(
        "ovserve_engine_requests_total",
        "counter",
        ("model", "event"),
        "engine request events since the engine worker started: added, finished, cancelled, failed",
    ),
    Family(
        "ovserve_engine_preemptions_total",
        "counter",
        ("model",),
        "generating requests the engine's scheduler preempted since the engine worker started (their KV blocks freed for "
        "other requests, recomputed later); counted by the worker from a running request's step without tokens, since "
        "openvino-genai has no such figure",
    ),
    Family("ovserve_prompt_tokens_total", "counter", ("model",), "prompt tokens of requests whose prompt was processed"),
    Family("ovserve_generated_tokens_total", "counter", ("model",), "tokens the engine generated (echoed prompt tokens excluded)"),
    Family(
        "ovserve_time_to_first_token_seconds",
        "histogram",
        ("model",),
        "from the request's arrival at the server to its first generated tokens reaching the server",
    ),
    Family(
        "ovserve_time_per_output_token_seconds",
        "histogram",
        ("model",),
        "per request: mean time between generated tokens after the first",
    ),
    Family(
        "ovserve_request_queue_seconds",
        "histogram",
        ("model",),
        "from the engine's add_request to the start of the engine step that produced the request's first tokens",
    ),
    Family("ovserve_engine_step_seconds", "histogram", ("model",), "duration of each engine step"),
    Family(
        "ovserve_image_preprocess_seconds",
        "histogram",
        ("model",),
        "per image of a chat request: its fetch (download, file read or base64 decoding) and decoding to pixels",
    ),
    Family("ovserve_images_per_request", "histogram", ("model",), "images in each chat request that brought any, once all were loaded"),
    Family(
        "ovserve_admission_requests_running",
        "gauge",
        (),
        "requests holding a running slot (--max_concurrent_requests): generation, embeddings, rerank, KServe infer",
    ),
    Family("ovserve_admission_queue_length", "gauge", (), "requests waiting for a running slot (at most --max_queued_requests)"),
    Family(
        "ovserve_requests_rejected_total",
        "counter",
        ("reason",),
        "requests refused because the admission queue was full (queue_full: 429), cut short by --request_timeout (timeout: 504) "
        "or cancelled because their client stopped reading "
        "(not_reading: over --max_unsent_bytes left unsent, or a send stalled past --send_timeout)",
    ),
)

BY_NAME = {f.name: f for f in FAMILIES}


def check_names(names: tuple[str, ...] | list[str], where: str) -> None:
    """ValueError naming the unknown families and listing the valid ones."""
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise ValueError(f"{where}: unknown metric {', '.join(map(repr, unknown))}; valid: {', '.join(BY_NAME)}")

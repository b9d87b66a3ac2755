"""The metric families `/metrics` serves: names (as exposed), types, labels, meaning.

Kept apart from serving/metrics.py (no prometheus-client import) so that config checks can
name the valid families. docs/operations.md's "Metrics" documents the same list.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    Family("ovserve_event_loop_lag_seconds", "histogram", (), "how late the event loop ran a 10 ms timer, since start"),
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
        "ovserve_text_to_speech_seconds",
        "histogram",
        ("model",),
        "per /v3/audio/speech request: the engine's time (Text2SpeechPipeline.generate; encoding and the wait for the engine excluded)",
    ),
    Family(
        "ovserve_image_generation_seconds",
        "histogram",
        ("model",),
        "per image generation or edit request: the engine's time (denoising, decoding, PNG encoding), without the wait for the engine",
    ),
    Family(
        "ovserve_image_generation_step_seconds",
        "histogram",
        ("model",),
        "each denoising step of an image request (steps per second: 1/this)",
    ),
    Family(
        "ovserve_speech_to_text_seconds",
        "histogram",
        ("model",),
        "per transcription or translation: the engine's time (WhisperPipeline.generate; decoding the upload excluded)",
    ),
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

# OVMS's families (docs/metrics.md of openvinotoolkit/model_server), exposed as OVMS exposes them:
# counters without a `_total` suffix, times in microseconds, and, since every ovserve servable is
# a graph, no `version` label (OVMS gives MediaPipe servables none).
_OVMS_METHOD = ("api", "interface", "method", "name")
OVMS_FAMILIES: tuple[Family, ...] = (
    Family("ovms_current_requests", "gauge", ("name",), "requests to the servable being answered (its graph runs in flight)"),
    Family("ovms_current_graphs", "gauge", ("name",), "graph runs in flight"),
    Family("ovms_requests_success", "counter", _OVMS_METHOD, "successful KServe ModelReady and ModelMetadata requests"),
    Family("ovms_requests_fail", "counter", _OVMS_METHOD, "failed KServe ModelReady and ModelMetadata requests"),
    Family("ovms_requests_accepted", "counter", _OVMS_METHOD, "requests that started a graph run (V3 and KServe ModelInfer)"),
    Family("ovms_requests_rejected", "counter", _OVMS_METHOD, "requests refused before their graph run started"),
    Family("ovms_graph_error", "counter", _OVMS_METHOD, "graph runs that ended in an error (e.g. a request the graph refused)"),
    Family("ovms_responses", "counter", _OVMS_METHOD, "responses the graph runs produced (one per unary request or stream)"),
    Family("ovms_graph_processing_time_us", "histogram", ("method", "name"), "time of successful graph runs, streams whole, in us"),
    Family("ovms_request_time_us", "histogram", ("interface", "name"), "time of successful requests to the servable, in us"),
    Family("ovms_inference_time_us", "histogram", ("name",), "duration of each engine step, in us"),
    Family("ovms_wait_for_infer_req_time_us", "histogram", ("name",), "time requests waited in the engine's queue, in us"),
    Family("ovms_streams", "gauge", ("name",), "inference streams of the servable's engine (genai's continuous batching: 1)"),
    Family("ovms_infer_req_queue_size", "gauge", ("name",), "inference requests of the servable's engine (1)"),
    Family("ovms_infer_req_active", "gauge", ("name",), "inference requests in use: 1 while the engine runs requests"),
)
# What OVMS serves when metrics are on without a list (its "optional" two only when listed).
OVMS_DEFAULT = tuple(f.name for f in OVMS_FAMILIES if f.name not in ("ovms_infer_req_queue_size", "ovms_infer_req_active"))

# vLLM's names (vllm/v1/metrics/loggers.py), served whenever metrics are on: the Gateway API
# Inference Extension's endpoint picker, KEDA rules and vLLM dashboards read them.
_VLLM = ("model_name", "engine")
VLLM_FAMILIES: tuple[Family, ...] = (
    Family("vllm:num_requests_running", "gauge", _VLLM, "requests the engine scheduled in its last step"),
    Family("vllm:num_requests_waiting", "gauge", _VLLM, "requests submitted to the engine and not scheduled in its last step"),
    Family("vllm:kv_cache_usage_perc", "gauge", _VLLM, "KV-cache usage, 1 means 100 percent"),
    Family("vllm:num_preemptions_total", "counter", _VLLM, "preempted requests since the engine worker started"),
    Family("vllm:prompt_tokens_total", "counter", _VLLM, "prompt tokens processed"),
    Family("vllm:generation_tokens_total", "counter", _VLLM, "generated tokens"),
    Family("vllm:request_success_total", "counter", (*_VLLM, "finished_reason"), "finished requests by finish reason"),
    Family("vllm:time_to_first_token_seconds", "histogram", _VLLM, "time to first token"),
    Family("vllm:time_per_output_token_seconds", "histogram", _VLLM, "per request: mean time between output tokens"),
    Family("vllm:inter_token_latency_seconds", "histogram", _VLLM, "per request: mean time between output tokens"),
    Family("vllm:request_time_per_output_token_seconds", "histogram", _VLLM, "per request: mean time between output tokens"),
    Family("vllm:e2e_request_latency_seconds", "histogram", _VLLM, "from arrival to the last generated tokens"),
    Family("vllm:request_queue_time_seconds", "histogram", _VLLM, "time requests waited in the engine's queue"),
    Family("vllm:request_prompt_tokens", "histogram", _VLLM, "prompt tokens per finished request"),
    Family("vllm:request_generation_tokens", "histogram", _VLLM, "generated tokens per finished request"),
    Family("vllm:lora_requests_info", "gauge", ("max_lora", "waiting_lora_adapters", "running_lora_adapters"), "LoRA adapters"),
    Family("vllm:cache_config_info", "gauge", ("engine", "model_name", "kv_cache_size_bytes"), "the engine's KV-cache configuration"),
)

BY_NAME = {f.name: f for f in FAMILIES}
OVMS_BY_NAME = {f.name: f for f in OVMS_FAMILIES}
VLLM_BY_NAME = {f.name: f for f in VLLM_FAMILIES}
KNOWN = {**BY_NAME, **OVMS_BY_NAME, **VLLM_BY_NAME}


def check_names(names: tuple[str, ...] | list[str], where: str) -> None:
    """ValueError naming the unknown families and listing the valid ones."""
    unknown = [n for n in names if n not in KNOWN]
    if unknown:
        raise ValueError(f"{where}: unknown metric {', '.join(map(repr, unknown))}; valid: {', '.join(KNOWN)}")


def selected(names: Sequence[str]) -> frozenset[str]:
    """The families served for a `metrics_list` (empty: ovserve's all and OVMS's default set);
    vLLM's are always served."""
    chosen = frozenset(names) if names else frozenset((*BY_NAME, *OVMS_DEFAULT))
    return chosen | frozenset(VLLM_BY_NAME)

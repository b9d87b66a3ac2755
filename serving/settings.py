"""Server settings: what the CLI parsed, as frozen data (tests build them directly)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from serving.admission import (
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_MAX_QUEUED,
    DEFAULT_MAX_UNSENT_BYTES,
    DEFAULT_REQUEST_TIMEOUT_S,
    DEFAULT_SEND_TIMEOUT_S,
)


@dataclass(frozen=True, slots=True)
class LLMFlags:
    """Single-model mode: values that override the stock graph's LLM node options."""

    target_device: str | None = None
    plugin_config: str | None = None
    cache_size: int | None = None
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    enable_prefix_caching: bool | None = None
    dynamic_split_fuse: bool | None = None
    max_tokens_limit: int | None = None
    max_prompt_tokens: int | None = None
    best_of_limit: int | None = None  # largest n / best_of a request may ask for (node default 20, as OVMS)
    stream_interval_ms: float | None = None
    tool_parser: str | None = None
    reasoning_parser: str | None = None
    pipeline_type: str | None = None
    kv_cache_precision: str | None = None  # OVMS: goes into plugin_config as KV_CACHE_PRECISION
    cache_dir: str | None = None  # OVMS: OpenVINO's compiled-model cache (CACHE_DIR)
    # Speculative decoding: a draft model (absolute path) and its options; prompt lookup's default n-gram size.
    draft_models_path: str | None = None
    draft_device: str | None = None
    draft_cache_size: int | None = None
    draft_max_num_seqs: int | None = None
    draft_max_num_batched_tokens: int | None = None
    draft_dynamic_split_fuse: bool | None = None
    max_ngram_size: int | None = None
    # LoRA adapters: {"name", "path" (absolute), "alpha"?} node option entries (--lora_adapter).
    lora_adapters: tuple[dict[str, object], ...] | None = None

    def merged_plugin_config(self) -> str | None:
        """--plugin_config with --kv_cache_precision and --cache_dir folded in, as OVMS does."""
        extra = {}
        if self.kv_cache_precision:
            extra["KV_CACHE_PRECISION"] = self.kv_cache_precision
        if self.cache_dir:
            extra["CACHE_DIR"] = self.cache_dir
        if not extra:
            return self.plugin_config
        base = json.loads(self.plugin_config) if self.plugin_config else {}
        if not isinstance(base, dict):
            raise ValueError("--plugin_config must be a JSON object")
        return json.dumps({**base, **extra})

    def node_options(self) -> dict[str, object]:
        pairs = {
            "device": self.target_device,
            "plugin_config": self.merged_plugin_config(),
            "pipeline_type": self.pipeline_type,
            "cache_size": self.cache_size,
            "max_num_seqs": self.max_num_seqs,
            "max_num_batched_tokens": self.max_num_batched_tokens,
            "enable_prefix_caching": self.enable_prefix_caching,
            "dynamic_split_fuse": self.dynamic_split_fuse,
            "max_tokens_limit": self.max_tokens_limit,
            "max_prompt_tokens": self.max_prompt_tokens,
            "best_of_limit": self.best_of_limit,
            "stream_interval_ms": self.stream_interval_ms,
            "tool_parser": self.tool_parser,
            "reasoning_parser": self.reasoning_parser,
            "draft_models_path": self.draft_models_path,
            "draft_device": self.draft_device,
            "draft_cache_size": self.draft_cache_size,
            "draft_max_num_seqs": self.draft_max_num_seqs,
            "draft_max_num_batched_tokens": self.draft_max_num_batched_tokens,
            "draft_dynamic_split_fuse": self.draft_dynamic_split_fuse,
            "max_ngram_size": self.max_ngram_size,
            "lora_adapters": list(self.lora_adapters) if self.lora_adapters else None,
        }
        return {k: v for k, v in pairs.items() if v is not None}


@dataclass(frozen=True, slots=True)
class Settings:
    config_path: Path | None = None
    model_path: Path | None = None
    model_name: str | None = None
    rest_port: int = 8000
    rest_bind_address: str = "127.0.0.1"
    log_level: str = "INFO"
    max_body_bytes: int = 16 * 1024 * 1024
    file_system_poll_wait_seconds: float = 1.0  # config.json polled for changes (0: off)
    log_path: Path | None = None
    task: str | None = None  # single-model mode: text_generation (default) or embeddings
    api_key: str | None = None  # every /v3, /v1 request must bring it (see serving.auth)
    api_key_open_paths: tuple[str, ...] = ("/v2/health/", "/metrics", "/openapi.json")  # paths (and below) that need no key
    llm: LLMFlags = field(default_factory=LLMFlags)
    # KServe v2 gRPC (OVMS --port / --grpc_bind_address): None = no gRPC front end.
    grpc_port: int | None = None
    grpc_bind_address: str | None = None  # None: same as rest_bind_address
    # Prometheus /metrics (OVMS: off unless --metrics_enable; config.json monitoring.metrics too).
    metrics_enable: bool = False
    metrics_list: tuple[str, ...] = ()  # only these metric families; empty: all
    # CORS (OVMS's flags; off unless allowed_origins names origins: serving.cors).
    allowed_origins: str = ""
    allowed_methods: str = "*"
    allowed_headers: str = "*"
    allow_credentials: bool = False
    # Host allow-list (serving.guards): "" = loopback names when bound to loopback, else any.
    allowed_hosts: str = ""
    # GET /v1/config and POST /v1/config/reload over HTTP (serving.reload); off by default.
    enable_config_api: bool = False
    # TLS for REST and gRPC: both files or neither.
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    log_format: str = "text"  # text | json
    log_request_content: bool = False  # prompts/outputs in the log: only with log_level DEBUG too
    shutdown_timeout: float = 30.0  # SIGTERM: streams in flight get this long to finish
    # Admission (serving/admission.py): graph runs at once, waiting requests, and a time limit.
    max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT
    max_queued_requests: int = DEFAULT_MAX_QUEUED
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S  # seconds from arrival; 0: none
    max_unsent_bytes: int = DEFAULT_MAX_UNSENT_BYTES  # a stream's output left unread beyond this: cancelled
    send_timeout: float = DEFAULT_SEND_TIMEOUT_S  # a send to a client stalled this long (s): connection dropped; 0: none
    # Per-request traces (serving/trace_routes.py): "off", "all" (--trace) or "header" (only the
    # requests sending X-Ovserve-Trace: 1); the last trace_keep are kept, each also in trace_dir.
    trace: str = "off"
    trace_keep: int = 256
    trace_dir: Path | None = None
    trace_dir_max_files: int = 1000  # trace files kept in trace_dir, the oldest deleted; 0: no limit

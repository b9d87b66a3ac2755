"""Server settings: what the CLI parsed, as frozen data (tests build them directly)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from serving.admission import (
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_MAX_QUEUED,
    DEFAULT_MAX_UNSENT_BYTES,
    DEFAULT_REQUEST_TIMEOUT_S,
    DEFAULT_SEND_TIMEOUT_S,
)

if TYPE_CHECKING:  # (importing calculators registers every stock calculator: not for subcommands)
    from calculators.media.policy import MediaPolicy


@dataclass(frozen=True, slots=True)
class LLMFlags:
    """Single-model mode: the LLM node options the flags set (calculators.llm.flags.LLM_FLAGS), by
    option name, and the plugin_config properties OVMS's flags fold in (--kv_cache_precision, --cache_dir)."""

    options: Mapping[str, object] = field(default_factory=dict)
    plugin_properties: Mapping[str, str] = field(default_factory=dict)

    @property
    def target_device(self) -> str | None:
        return cast("str | None", self.options.get("device"))

    @property
    def plugin_config(self) -> str | None:
        """--plugin_config as given (the embeddings and rerank nodes take it so)."""
        return cast("str | None", self.options.get("plugin_config"))

    def merged_plugin_config(self) -> str | None:
        """--plugin_config with --kv_cache_precision and --cache_dir folded in, as OVMS does."""
        if not self.plugin_properties:
            return self.plugin_config
        base = json.loads(self.plugin_config) if self.plugin_config else {}
        if not isinstance(base, dict):
            raise ValueError("--plugin_config must be a JSON object")
        return json.dumps({**base, **self.plugin_properties})

    def node_options(self) -> dict[str, object]:
        """The options to set on the stock graph's LLM node (repeated ones as lists)."""
        options = {k: list(v) if isinstance(v, tuple) else v for k, v in self.options.items()}
        plugin_config = self.merged_plugin_config()
        if plugin_config is not None:
            options["plugin_config"] = plugin_config
        return options


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
    api_key_open_paths: tuple[str, ...] = ("/v2/health/", "/health", "/metrics", "/openapi.json")  # paths (and below) that need no key
    llm: LLMFlags = field(default_factory=LLMFlags)
    # KServe v2 gRPC (OVMS --port / --grpc_bind_address): None = no gRPC front end.
    grpc_port: int | None = None
    grpc_bind_address: str | None = None  # None: same as rest_bind_address
    ollama_port: int | None = None  # a second REST port for Ollama clients (11434); None: only the main port
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
    # image_url in chat requests (calculators/media, docs/media.md): the one loader's policy, and
    # how many images a request may bring.
    media: MediaPolicy | None = None  # None: MediaPolicy()'s defaults (no URL, no file)
    max_images_per_request: int = 8  # calculators.media.access.DEFAULT_MAX_IMAGES_PER_REQUEST
    image_options: dict[str, Any] = field(default_factory=dict)  # --task image_generation's node options (serving/image_flags.py)
    image_url_store_mb: int = 64  # images kept for response_format url (serving/image_store.py); 0: url refused
    image_url_ttl_s: float = 3600.0  # and for how long (s)
    max_audio_bytes: int = 25 * 1024 * 1024  # audio uploads (serving/audio_flags.py): 413 above
    max_audio_seconds: float = 1500.0  # and 400 above
    max_speech_input_chars: int = 4096  # /v3/audio/speech's `input` (serving/speech_flags.py): 400 above
    # Stored responses per servable (serving/responses/store.py): how many, and for how long (s).
    responses_store_size: int = 1000
    responses_store_ttl: float = 3600.0
    console: bool = True  # the web console at /console/ (serving/console_routes.py); --console off: none

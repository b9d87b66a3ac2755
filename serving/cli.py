"""`ovserve`: the server (OVMS's flag names) and its helper subcommands."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphs import logfmt
from graphs.errors import GraphConfigError
from serving import event_loop
from serving.admission import (
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_MAX_QUEUED,
    DEFAULT_MAX_UNSENT_BYTES,
    DEFAULT_REQUEST_TIMEOUT_S,
    DEFAULT_SEND_TIMEOUT_S,
)
from serving.audio_flags import add_audio_flags
from serving.cli_types import (
    boolean,
    comma_list,
    non_negative_float,
    non_negative_int,
    port,
    positive_int,
    raising_argument_errors,
)
from serving.config_file import ConfigFileError
from serving.image_flags import add_image_flags, image_node_options
from serving.media_flags import add_media_flags, media_policy
from serving.ovms_flags import LOG_LEVELS, accept_ovms_flags, add_ovms_flags
from serving.ovms_flags import warning as ovms_warning
from serving.responses.flags import add_responses_flags
from serving.settings import LLMFlags, Settings
from serving.speech_flags import add_speech_flags

if TYPE_CHECKING:
    from calculators.llm.flags import LLMFlag

log = logging.getLogger("ovserve")

SUBCOMMANDS = {
    "demo": "serving.demo",
    "build-model": "serving.dev_models",
    "bench": "serving.bench.cli",
    "bench-embeddings": "serving.bench.embeddings",
    "graph": "serving.graph_cli",
    "soak": "serving.soak.run",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ovserve",
        description="OpenVINO model server with MediaPipe-style graphs. Subcommands: "
        "`ovserve demo` (build the demo model and write its config), `ovserve build-model`.",
        allow_abbrev=False,  # as OVMS: a shortened or mistyped flag is an error, not another flag
    )
    source = parser.add_argument_group("what to serve (one of)")
    source.add_argument("--config_path", type=Path, help="OVMS config.json listing servables")
    source.add_argument("--model_path", type=Path, help="one model folder (OpenVINO IR + tokenizer, or with graph.pbtxt), or a .gguf file")
    source.add_argument("--model_name", help="name of the --model_path model (default: the folder name)")
    server = parser.add_argument_group("server")
    server.add_argument("--rest_port", type=port, default=8000, help="REST port (0 picks a free one) [8000]")
    server.add_argument("--rest_bind_address", default="127.0.0.1", help="REST bind address [127.0.0.1]")
    server.add_argument("--log_level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR", *LOG_LEVELS], help="[INFO]")
    server.add_argument(
        "--file_system_poll_wait_seconds", type=float, default=1.0, help="poll config.json for changes this often; 0: off [1]"
    )
    server.add_argument("--log_path", type=Path, help="also write the log to this file")
    server.add_argument("--api_key_file", type=Path, help="every /v3 and /v1 request needs this key as a Bearer token (else $API_KEY)")
    server.add_argument("--port", type=port, help="KServe v2 gRPC port (0 picks a free one); no gRPC front end without it")
    server.add_argument("--grpc_bind_address", help="gRPC bind address [--rest_bind_address]")
    server.add_argument("--ollama_port", type=port, help="also serve on this port (Ollama's is 11434) for Ollama clients; 0 or absent: off")
    server.add_argument("--rest_workers", type=int, help="accepted for OVMS scripts; one asyncio loop serves REST here")
    server.add_argument(
        "--cache_dir",
        help="OpenVINO compiled-model cache folder (plugin_config CACHE_DIR); GGUF conversions go to its gguf/ [~/.cache/ovserve/gguf]",
    )
    server.add_argument("--max_request_size", type=int, default=16 * 1024 * 1024, help="largest request body in bytes [16 MiB]")
    ops = parser.add_argument_group("operations")
    ops.add_argument("--metrics_enable", action="store_true", help="serve Prometheus metrics at /metrics on the REST port")
    ops.add_argument("--metrics_list", help="comma-separated metric families to serve (default: all); see the README")
    ops.add_argument(
        "--api_key_open_paths",
        default="/v2/health/,/health,/metrics,/openapi.json",
        help="comma-separated paths that need no API key, each with everything below it [/v2/health/,/health,/metrics,/openapi.json]",
    )
    ops.add_argument(
        "--allowed_origins", default="", help="CORS: comma-separated origins allowed to call from a browser, '*' for any [none: CORS off]"
    )
    ops.add_argument("--allowed_methods", default="*", help="CORS: comma-separated allowed methods [*]")
    ops.add_argument("--allowed_headers", default="*", help="CORS: comma-separated allowed request headers [*]")
    ops.add_argument("--allow_credentials", type=boolean, default=False, help="CORS: allow credentials [false]")
    ops.add_argument(
        "--allowed_hosts",
        default="",
        help="comma-separated Host names served ('*' any, '.example.com' a domain); localhost names always "
        "[bound to loopback: localhost names only; bound elsewhere: any]",
    )
    ops.add_argument(
        "--enable_config_api", action="store_true", help="serve GET /v1/config and POST /v1/config/reload (behind the API key) [off]"
    )
    ops.add_argument("--ssl_certfile", type=Path, help="serve REST and gRPC over TLS with this certificate (PEM)")
    ops.add_argument("--ssl_keyfile", type=Path, help="the private key (PEM) of --ssl_certfile")
    ops.add_argument("--log_format", choices=["text", "json"], default="text", help="json: one JSON object per log line [text]")
    ops.add_argument(
        "--log_request_content",
        action="store_true",
        help="with --log_level DEBUG, log prompts and outputs (never logged otherwise)",
    )
    ops.add_argument(
        "--shutdown_timeout", type=float, default=30.0, help="on SIGTERM, requests in flight get this many seconds to finish [30]"
    )
    ops.add_argument(
        "--max_concurrent_requests",
        type=positive_int,
        default=DEFAULT_MAX_CONCURRENT,
        help=f"most generation/embeddings/rerank/infer requests running at once; more wait in a queue [{DEFAULT_MAX_CONCURRENT}]",
    )
    ops.add_argument(
        "--max_queued_requests",
        type=non_negative_int,
        default=DEFAULT_MAX_QUEUED,
        help=f"most requests waiting for a running slot; more are refused with 429 and Retry-After [{DEFAULT_MAX_QUEUED}]",
    )
    ops.add_argument(
        "--request_timeout",
        type=non_negative_float,
        default=DEFAULT_REQUEST_TIMEOUT_S,
        help=f"cancel (504) a request still waiting or running this long after it arrived, in s; 0: none [{DEFAULT_REQUEST_TIMEOUT_S:g}]",
    )
    ops.add_argument(
        "--max_unsent_bytes",
        type=positive_int,
        default=DEFAULT_MAX_UNSENT_BYTES,
        help="a stream whose client leaves more than this many bytes of output unread (beyond the socket's buffers) "
        f"is cancelled and its connection dropped [{DEFAULT_MAX_UNSENT_BYTES}]",
    )
    ops.add_argument(
        "--send_timeout",
        type=non_negative_float,
        default=DEFAULT_SEND_TIMEOUT_S,
        help="drop the connection of a client that takes none of its answer for this long, in s (as nginx's send_timeout), "
        f"which frees its running slot; 0: none [{DEFAULT_SEND_TIMEOUT_S:g}]",
    )
    ops.add_argument(
        "--trace",
        nargs="?",
        const="all",
        choices=["all", "header"],
        help="record per-request traces (GET /debug/traces): of every request, or with 'header' only of requests "
        "sending X-Ovserve-Trace: 1 [off]",
    )
    ops.add_argument("--trace_dir", type=Path, help="also write each trace as DIR/<id>.json (Chrome trace JSON); implies --trace")
    ops.add_argument(
        "--trace_dir_max_files",
        type=non_negative_int,
        default=1000,
        help="trace files kept in --trace_dir; the oldest this server wrote are deleted; 0: no limit [1000]",
    )
    ops.add_argument(
        "--console",
        choices=["on", "off"],
        default="on",
        help="the web console (chat, graph, traces, health) at /console/, where browsers asking for / are sent [on]",
    )
    ops.add_argument("--trace_keep", type=positive_int, default=256, help="traces kept in memory for /debug/traces [256]")
    add_media_flags(parser)
    add_image_flags(parser)
    add_audio_flags(parser)
    add_speech_flags(parser)
    add_responses_flags(parser)
    add_ovms_flags(parser)
    add_llm_flags(parser.add_argument_group("text generation (single-model mode; as the graph's LLM node options)"))
    from serving.repository.commands import add_model_flags

    add_model_flags(parser)
    return parser


def _value_type(flag: LLMFlag) -> Callable[[str], object]:
    """argparse's `type` for one value of `flag`: the node option's type and lower bound (an upper
    bound is checked when the graph is validated)."""
    if flag.parse is not None:
        return raising_argument_errors(flag.parse)
    if flag.kind == "bool":
        return boolean
    if flag.kind == "int" and flag.minimum is not None:
        return positive_int if flag.minimum >= 1 else non_negative_int
    if flag.kind == "float" and flag.minimum is not None:
        return non_negative_float
    return {"int": int, "float": float}.get(flag.kind, str)


def add_llm_flags(group: argparse._ArgumentGroup) -> None:
    """One flag per LLM node option marked as one (calculators/llm/options.py)."""
    from calculators.llm.flags import LLM_FLAGS  # imports the stock calculators: not for subcommands

    for flag in LLM_FLAGS:
        kwargs: dict[str, Any] = {"help": flag.help, "type": _value_type(flag)}
        if flag.choices:
            kwargs["choices"] = list(flag.choices)
        if flag.repeat:
            kwargs["action"] = "append"
        if flag.metavar:
            kwargs["metavar"] = flag.metavar
        group.add_argument(f"--{flag.name}", **kwargs)


def llm_flags(args: argparse.Namespace) -> LLMFlags:
    """The LLM flags given, as node options by name (and plugin_config properties)."""
    from calculators.llm.flags import LLM_FLAGS

    options: dict[str, object] = {}
    properties: dict[str, str] = {}
    for flag in LLM_FLAGS:
        value = getattr(args, flag.name)
        if value is None:
            continue
        if flag.plugin_property:
            properties[flag.plugin_property] = str(value)
        elif flag.absolute_path:
            if value:  # an empty path: unset, as before
                options[flag.option] = str(Path(value).resolve())
        else:
            options[flag.option] = tuple(value) if flag.repeat else value
    if args.cache_dir:
        properties["CACHE_DIR"] = args.cache_dir
    return LLMFlags(options, properties)


def settings_from_args(args: argparse.Namespace) -> Settings:
    from serving.auth import load_api_key

    return Settings(
        api_key=load_api_key(args.api_key_file),
        config_path=args.config_path,
        model_path=args.model_path,
        model_name=args.model_name,
        rest_port=args.rest_port,
        rest_bind_address=args.rest_bind_address,
        log_level=args.log_level,
        max_body_bytes=args.max_request_size,
        file_system_poll_wait_seconds=args.file_system_poll_wait_seconds,
        llm=llm_flags(args),
        log_path=args.log_path,
        task=getattr(args, "task", None),
        api_key_open_paths=comma_list(args.api_key_open_paths),
        grpc_port=args.port,
        grpc_bind_address=args.grpc_bind_address,
        ollama_port=args.ollama_port or None,
        metrics_enable=args.metrics_enable,
        metrics_list=comma_list(args.metrics_list),
        allowed_origins=args.allowed_origins,
        allowed_methods=args.allowed_methods,
        allowed_headers=args.allowed_headers,
        allow_credentials=args.allow_credentials,
        allowed_hosts=args.allowed_hosts,
        enable_config_api=args.enable_config_api,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        log_format=args.log_format,
        log_request_content=args.log_request_content,
        shutdown_timeout=args.shutdown_timeout,
        max_concurrent_requests=args.max_concurrent_requests,
        max_queued_requests=args.max_queued_requests,
        request_timeout=args.request_timeout,
        max_unsent_bytes=args.max_unsent_bytes,
        send_timeout=args.send_timeout,
        trace=args.trace or ("all" if args.trace_dir is not None else "off"),
        trace_keep=args.trace_keep,
        trace_dir=args.trace_dir,
        trace_dir_max_files=args.trace_dir_max_files,
        media=media_policy(args),
        max_images_per_request=args.max_images_per_request,
        image_options=image_node_options(args),
        image_url_store_mb=args.image_url_store_mb,
        image_url_ttl_s=args.image_url_ttl_s,
        max_audio_bytes=args.max_audio_bytes,
        max_audio_seconds=args.max_audio_seconds,
        max_speech_input_chars=args.max_speech_input_chars,
        responses_store_size=args.responses_store_size,
        responses_store_ttl=args.responses_store_ttl,
        console=args.console == "on",
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        import importlib

        from serving.dev_models import DevModelsUnavailable

        try:
            module = importlib.import_module(SUBCOMMANDS[argv[0]])
            return int(module.main(argv[1:]))
        except DevModelsUnavailable as exc:  # a test/demo model asked of an installed wheel
            print(f"ovserve {argv[0]}: {exc}", file=sys.stderr)
            return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    ovms_only = accept_ovms_flags(args)
    from serving.repository.commands import handle_model_commands

    code = handle_model_commands(args)  # pull / export / config edits; None: go on and serve
    if code is not None:
        return code
    if (args.config_path is None) == (args.model_path is None):
        parser.error("give exactly one of --config_path or --model_path")
    if args.model_name and args.model_path is None:
        parser.error("--model_name needs --model_path")
    try:
        settings = settings_from_args(args)
    except ValueError as exc:  # e.g. an unreadable --api_key_file, a bad --allowed_media_domains entry
        parser.error(str(exc))
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if settings.log_path is not None:
        handlers.append(logging.FileHandler(settings.log_path))
    logfmt.configure(settings.log_level, settings.log_format, handlers)
    if ovms_only:
        log.warning(ovms_warning(ovms_only))
    if args.rest_workers is not None:
        log.warning("--rest_workers is accepted for OVMS compatibility; one asyncio loop serves REST here")
    if (settings.ssl_certfile is None) != (settings.ssl_keyfile is None):
        parser.error("--ssl_certfile and --ssl_keyfile go together")
    if settings.trace_dir is not None:
        try:
            settings.trace_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            parser.error(f"--trace_dir {settings.trace_dir}: {exc.strerror or exc}")
    if settings.config_path is not None and any(v is not None for v in (args.target_device, args.cache_dir, args.kv_cache_precision)):
        log.warning("LLM flags apply to single-model mode; with --config_path each graph.pbtxt sets its own options")
    from serving.loading import build_servables

    try:
        servables, problems = build_servables(settings)
    except (GraphConfigError, ConfigFileError, ValueError) as exc:  # ValueError: e.g. --plugin_config not JSON
        print(f"ovserve: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"ovserve: not serving this graph: {problem}", file=sys.stderr)
    if not servables:
        return 2
    from serving.server import serve

    return event_loop.run(serve(settings, servables))


if __name__ == "__main__":
    sys.exit(main())

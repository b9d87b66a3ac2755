"""`ovserve bench`: benchmark a server, the engine in this process, or both (`--compare`).

    ovserve bench --base-url http://127.0.0.1:8000 --endpoint /v3/chat/completions --model NAME \\
        --model-dir DIR --input-len 128 --output-len 128 --num-prompts 64 --max-concurrency 32
    ovserve bench --in-process DIR ...              # the same workload on ContinuousBatchingPipeline
    ovserve bench --compare --model-dir DIR ...     # starts ovserve on DIR, then the engine; ratios

`--model-dir` (the tokenizer that counts prompt tokens as the server will) may be `tiny` or
`synthetic`: the locally built demo/benchmark models.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from serving import event_loop
from serving.bench import client, vllm_flags
from serving.bench.server_process import process_tree_cpu, start_server
from serving.bench.stats import RequestResult, compare, format_comparison, format_table, per_request, summarize
from serving.bench.vllm_result import build_result
from serving.bench.workload import Workload, build_workload, fixed_workload, is_chat_endpoint, load_tokenizer
from serving.cli_types import boolean, positive_int

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
WARMUP_OUTPUT_LEN = 32


def _rate(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("--request-rate must be above 0 (inf: all at once)")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ovserve bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_argument_group("what to benchmark")
    target.add_argument("--base-url", help=f"an OpenAI-compatible server [{DEFAULT_BASE_URL}; with --compare: start ovserve]")
    target.add_argument("--endpoint", help="path of the streaming endpoint [/v3/chat/completions; with --backend: vLLM's]")
    target.add_argument("--model", help="model name in requests [the server's first model; 'bench' for a server started here]")
    target.add_argument("--model-dir", help="model folder (its tokenizer builds the prompts), or 'tiny' / 'synthetic'")
    target.add_argument("--in-process", metavar="MODEL_DIR", help="run on ContinuousBatchingPipeline in this process, no server")
    target.add_argument("--compare", action="store_true", help="the server, then the engine in-process; print server/engine ratios")
    target.add_argument("--api-key", help="sent as `Authorization: Bearer KEY`")
    target.add_argument("--extra-body", type=json.loads, help="JSON object merged into every request body")
    target.add_argument(
        "--tokens-from",
        choices=["usage", "requested"],
        default="usage",
        help="count output tokens from the usage chunk, or (servers without one) take --output-len for a stream with content [usage]",
    )
    target.add_argument(
        "--no-keepalive",
        action="store_true",
        help="a new connection per request (servers that close kept-alive connections unannounced, e.g. llama-server)",
    )
    load = parser.add_argument_group("workload")
    load.add_argument("--input-len", type=positive_int, default=128, help="prompt tokens, as the server counts them [128]")
    load.add_argument("--output-len", type=positive_int, default=128, help="generated tokens per request (ignore_eos) [128]")
    load.add_argument("--num-prompts", type=positive_int, default=64, help="[64]")
    load.add_argument("--max-concurrency", type=positive_int, help="most requests in flight [no limit]")
    load.add_argument("--request-rate", type=_rate, default=float("inf"), help="Poisson arrivals per second [inf: all at once]")
    load.add_argument("--seed", type=int, default=0, help="prompts and arrival times [0]")
    load.add_argument(
        "--prompts",
        choices=["random", "tiny"],
        default="random",
        help="random: --input-len tokens, --output-len generated (ignore_eos); tiny: the tiny model's trained prompts "
        "in turn, each answered to its end (at most --output-len tokens), so a draft model or prompt lookup can guess "
        "what comes [random]",
    )
    load.add_argument(
        "--warmup", type=int, help=f"unmeasured requests before each run ({WARMUP_OUTPUT_LEN} tokens) [max(4, --max-concurrency)]"
    )
    out = parser.add_argument_group("output")
    out.add_argument("--json", type=Path, metavar="FILE", help="write every figure as JSON")
    out.add_argument("--no-progress", action="store_true", help="no progress bar (also off when stderr is not a terminal)")
    engine = parser.add_argument_group("engine settings (in-process run, and a server started by --compare)")
    engine.add_argument("--device", default="CPU", help="[CPU]")
    engine.add_argument("--cache-size", type=int, default=1, help="KV cache GB [1]")
    engine.add_argument("--max-num-seqs", type=positive_int, default=256, help="[256]")
    engine.add_argument("--max-num-batched-tokens", type=positive_int, default=2048, help="[2048]")
    engine.add_argument("--enable-prefix-caching", type=boolean, default=True, help="[true]")
    engine.add_argument("--dynamic-split-fuse", type=boolean, default=True, help="[true]")
    engine.add_argument("--plugin-config", default="", help='OpenVINO properties as JSON, e.g. {"NUM_STREAMS": 1}')
    engine.add_argument("--stream-interval-ms", type=float, help="server started by --compare: its --stream_interval_ms")
    engine.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="FLAG",
        help="server started by --compare: one more flag (repeat), e.g. --server-arg=--metrics_enable",
    )
    vllm_flags.add_arguments(parser)
    return parser


def resolve_model_dir(text: str) -> Path:
    """A folder, or `tiny` / `synthetic` (built locally once, then cached)."""
    path = Path(text)
    if path.is_dir():
        return path.resolve()
    if text in ("tiny", "synthetic"):
        from serving.dev_models import models

        builder = models().build_tiny_model if text == "tiny" else models().build_synthetic_model
        return Path(builder())
    raise SystemExit(f"ovserve bench: no model folder {text!r} (give a folder, 'tiny' or 'synthetic')")


def _note(message: str) -> None:
    print(f"ovserve bench: {message}", file=sys.stderr, flush=True)


@contextmanager
def _progress(total: int, label: str, disabled: bool) -> Iterator[Callable[[], None]]:
    from tqdm import tqdm

    bar = tqdm(total=total, desc=label, unit="req", file=sys.stderr, disable=disabled or not sys.stderr.isatty(), dynamic_ncols=True)
    try:
        yield lambda: bar.update(1)
    finally:
        bar.close()


def _server_flags(args: argparse.Namespace) -> list[str]:
    flags = [
        "--target_device", args.device,
        "--cache_size", str(args.cache_size),
        "--max_num_seqs", str(args.max_num_seqs),
        "--max_num_batched_tokens", str(args.max_num_batched_tokens),
        "--enable_prefix_caching", str(args.enable_prefix_caching).lower(),
        "--dynamic_split_fuse", str(args.dynamic_split_fuse).lower(),
    ]  # fmt: skip
    if args.plugin_config:
        flags += ["--plugin_config", args.plugin_config]
    if args.stream_interval_ms is not None:
        flags += ["--stream_interval_ms", str(args.stream_interval_ms)]
    return flags + args.server_arg


async def _bench_server(
    args: argparse.Namespace,
    base_url: str,
    model: str | None,
    workload: Workload,
    warmup: Workload | None,
    server_pid: int | None = None,
) -> dict[str, Any]:
    if model is None:
        model = await client.discover_model(base_url, args.endpoint, args.api_key)
    common = {
        "api_key": args.api_key,
        "extra_body": args.extra_body,
        "tokens_from_usage": args.tokens_from == "usage",
        "keepalive": not args.no_keepalive,
        "keep_text": args.save_detailed,
    }
    if warmup is not None:
        _note(f"warm-up: {len(warmup.prompts)} requests")
        # At the run's concurrency, so the client's connections are open before the measured
        # run (a cold connection delays its first request by a TCP handshake).
        run = await client.run_workload(
            base_url, args.endpoint, model, warmup, args.max_concurrency, measure_loop_lag=False, **{**common, "keep_text": False}
        )
        failed = [r.error for r in run.results if r.error is not None]
        if len(failed) == len(run.results):
            raise SystemExit(f"ovserve bench: every warm-up request failed: {failed[0]}")
        if failed:  # e.g. a server that cannot serve requests in parallel: the run will show it
            _note(f"{len(failed)} of {len(run.results)} warm-up requests failed: {failed[0]}")
    cpu_before = process_tree_cpu(server_pid) if server_pid else None
    with _progress(len(workload.prompts), "server", args.no_progress) as on_done:
        run = await client.run_workload(base_url, args.endpoint, model, workload, args.max_concurrency, on_done=on_done, **common)
    cpu_after = process_tree_cpu(server_pid) if server_pid else None
    summary = summarize(run.results, run.duration_s)
    summary["requests"] = per_request(run.results)
    summary["client_cpu_s"] = run.client_cpu_s
    if cpu_before and cpu_after:  # a server started here: its own CPU, and its engine workers'
        summary["server_cpu_s"] = {key: cpu_after[key] - cpu_before[key] for key in cpu_after}
    summary["target"] = {"base_url": base_url, "endpoint": args.endpoint, "model": model}
    summary["loop_lag"] = run.loop_lag
    summary["loop_lag_p99_ms"] = run.loop_lag.get("p99_ms") if run.loop_lag else None
    _add_vllm_result(args, summary, args.model or model, workload, run.results, run.duration_s)
    return summary


def _add_vllm_result(
    args: argparse.Namespace, summary: dict[str, Any], model_id: str, workload: Workload, results: list[RequestResult], duration: float
) -> None:
    """With --save-result: vLLM's result object, under a key main() writes to its own file."""
    if args.save_result:
        setup = vllm_flags.result_setup(args, model_id, workload.chat)
        input_lens = [len(p.token_ids) for p in workload.prompts]
        summary["vllm_result"] = (setup, build_result(setup, results, input_lens, duration))


def run_server_part(args: argparse.Namespace, model_dir: Path, workload: Workload, warmup: Workload | None) -> dict[str, Any]:
    if args.base_url or not args.compare:
        return event_loop.run(_bench_server(args, args.base_url or DEFAULT_BASE_URL, vllm_flags.request_model(args), workload, warmup))
    _note(f"starting ovserve on {model_dir}")
    server = start_server("--model_path", str(model_dir), "--model_name", "bench", *_server_flags(args))
    try:
        summary = event_loop.run(_bench_server(args, server.base_url, args.model or "bench", workload, warmup, server.process.pid))
    finally:
        code = server.stop()
        _note(f"server stopped (exit code {code})")
    return summary


def run_engine_part(args: argparse.Namespace, model_dir: Path, workload: Workload, warmup: Workload | None) -> dict[str, Any]:
    from calculators.llm.engine_bench import EngineBench, EngineSettings

    plugin_config = json.loads(args.plugin_config) if args.plugin_config else {}
    settings = EngineSettings(
        models_path=str(model_dir),
        device=args.device,
        cache_size=args.cache_size,
        max_num_seqs=args.max_num_seqs,
        max_num_batched_tokens=args.max_num_batched_tokens,
        enable_prefix_caching=args.enable_prefix_caching,
        dynamic_split_fuse=args.dynamic_split_fuse,
        plugin_config=plugin_config,
    )
    _note(f"loading the engine in-process on {args.device}")
    engine = EngineBench(settings)
    if warmup is not None:
        _note(f"warm-up: {len(warmup.prompts)} requests")
        engine.run([p.token_ids for p in warmup.prompts], warmup.arrivals, warmup.output_len, args.max_concurrency)
    cpu_started = time.process_time()
    with _progress(len(workload.prompts), "engine", args.no_progress) as on_done:
        raw, duration = engine.run(
            [p.token_ids for p in workload.prompts], workload.arrivals, workload.output_len, args.max_concurrency, on_done
        )
    results = [RequestResult(r.start, r.chunk_times, r.end, r.prompt_tokens, r.output_tokens, r.error) for r in raw]
    summary = summarize(results, duration)
    summary["requests"] = per_request(results)
    summary["engine_cpu_s"] = time.process_time() - cpu_started
    summary["target"] = {"in_process": str(model_dir), "device": args.device}
    _add_vllm_result(args, summary, args.model or model_dir.name, workload, results, duration)
    return summary


def _json_ready(value: Any) -> Any:
    """NaN -> null (strict JSON); paths -> strings."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    vllm_flags.resolve(args, parser)
    if args.in_process and (args.compare or args.base_url):
        parser.error("--in-process runs the engine alone; for both use --compare (with --model-dir)")
    model_dir_text = args.in_process or args.model_dir
    if not model_dir_text:
        parser.error("give --model-dir (its tokenizer builds the prompts) or --in-process MODEL_DIR")
    model_dir = resolve_model_dir(model_dir_text)
    if args.warmup is None:  # enough to open every connection the run will use
        args.warmup = max(4, args.max_concurrency or 4)
    chat = is_chat_endpoint(args.endpoint)
    tokenizer = load_tokenizer(model_dir)
    if args.prompts == "tiny":
        from serving.dev_models import models

        texts = list(models().TINY_PROMPTS if chat else models().TINY_COMPLETIONS)
        args.extra_body = {"ignore_eos": False, **(args.extra_body or {})}  # ends where the model ends (unless --ignore-eos)

        def make(num: int, output_len: int, seed: int) -> Workload:
            return fixed_workload(
                tokenizer, texts, num_prompts=num, output_len=output_len, chat=chat, seed=seed, request_rate=args.request_rate,
                burstiness=args.burstiness,
            )  # fmt: skip
    else:
        shape = {"input_len": args.input_len, "chat": chat, "burstiness": args.burstiness}

        def make(num: int, output_len: int, seed: int) -> Workload:
            return build_workload(tokenizer, num_prompts=num, output_len=output_len, request_rate=args.request_rate, seed=seed, **shape)

    workload = make(args.num_prompts, args.output_len, args.seed)
    warmup = make(args.warmup, min(args.output_len, WARMUP_OUTPUT_LEN), args.seed + 10_000) if args.warmup > 0 else None
    config = {
        "model_dir": str(model_dir),
        "endpoint": args.endpoint,
        "input_len": args.input_len,
        "output_len": args.output_len,
        "num_prompts": args.num_prompts,
        "max_concurrency": args.max_concurrency,
        "request_rate": None if math.isinf(args.request_rate) else args.request_rate,
        "seed": args.seed,
        "prompts": args.prompts,
        "warmup": args.warmup,
        "workload_mean_prompt_tokens": workload.mean_prompt_tokens,
        "engine": {
            "device": args.device,
            "cache_size": args.cache_size,
            "max_num_seqs": args.max_num_seqs,
            "max_num_batched_tokens": args.max_num_batched_tokens,
            "enable_prefix_caching": args.enable_prefix_caching,
            "dynamic_split_fuse": args.dynamic_split_fuse,
            "plugin_config": args.plugin_config,
        },
    }
    report: dict[str, Any]
    if args.in_process:
        engine = run_engine_part(args, model_dir, workload, warmup)
        print(format_table("in-process engine", engine))
        report = {"mode": "in_process", "config": config, **engine}
    elif not args.compare:
        server = run_server_part(args, model_dir, workload, warmup)
        print(format_table(f"server {server['target']['base_url']}{args.endpoint}", server))
        report = {"mode": "server", "config": config, **server}
    else:
        server = run_server_part(args, model_dir, workload, warmup)
        print(format_table(f"server {server['target']['base_url']}{args.endpoint}", server), flush=True)
        engine = run_engine_part(args, model_dir, workload, warmup)
        print(format_table("in-process engine", engine))
        ratios = compare(server, engine)
        print(format_comparison(server, engine, ratios))
        report = {
            "mode": "compare",
            "config": config,
            **ratios,
            "loop_lag_p99_ms": server["loop_lag_p99_ms"],
            "server": server,
            "engine": engine,
        }
    if (saved := report.pop("vllm_result", None)) is not None:
        _note(f"vLLM result written to {vllm_flags.write_result(args, *saved)}")
    if args.json:
        args.json.write_text(json.dumps(_json_ready(report), indent=2) + "\n", encoding="utf-8")
    failed = sum(part.get("failed", 0) for part in (report, report.get("server", {}), report.get("engine", {})))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""`vllm bench serve`'s flag spellings on `ovserve bench`, and its result file (`--save-result`).

A command line written for vLLM's benchmark (vllm-project/vllm vllm/benchmarks/serve.py and its
random dataset's flags) runs here as it is, where a flag maps onto our workload; flags that only
steer vLLM's own client (tokenizer mode, request ids, ready check) are accepted and named in a
note. Anything else (other datasets, ramp-up, LoRA modules, profiling) stays an error.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from serving.bench.vllm_result import METRICS, ResultSetup, default_filename

BACKENDS = ("openai", "openai-chat", "vllm")  # the OpenAI-compatible streaming ones
_BACKEND_ENDPOINTS = {"openai": "/v1/completions", "vllm": "/v1/completions", "openai-chat": "/v1/chat/completions"}
OURS_ENDPOINT = "/v3/chat/completions"
_SAMPLING = ("temperature", "top_p", "top_k", "min_p", "frequency_penalty", "presence_penalty", "repetition_penalty")
_NO_EFFECT = ("trust_remote_code", "tokenizer_mode", "ready_check_timeout_sec", "request_id_prefix")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    alias = argparse.SUPPRESS  # an alias sets its value only when given
    group = parser.add_argument_group("vLLM spellings (vllm bench serve): the same run, and its result file")
    group.add_argument("--backend", choices=BACKENDS, help="openai / vllm: completions, openai-chat: chat [from --endpoint]")
    group.add_argument("--label", help="the result's label and file name prefix [the backend]")
    group.add_argument("--host", help="with --port, instead of --base-url [127.0.0.1]")
    group.add_argument("--port", type=int, help="with --host, instead of --base-url [8000]")
    group.add_argument("--tokenizer", dest="model_dir", default=alias, help="= --model-dir")
    group.add_argument("--served-model-name", help="model name in requests, when --model names the tokenizer's model")
    group.add_argument("--dataset-name", choices=["random"], help="random (= --prompts random) [random]")
    group.add_argument("--random-input-len", dest="input_len", type=int, default=alias, help="= --input-len")
    group.add_argument("--random-output-len", dest="output_len", type=int, default=alias, help="= --output-len")
    group.add_argument("--random-range-ratio", type=float, default=0.0, help="0 only: every prompt has --input-len tokens")
    group.add_argument("--random-prefix-len", type=int, default=0, help="0 only (shared prefixes: demos/benchmark)")
    group.add_argument("--burstiness", type=float, default=1.0, help="gamma arrivals when not 1 [1: Poisson]")
    group.add_argument("--num-warmups", dest="warmup", type=int, default=alias, help="= --warmup")
    group.add_argument("--disable-tqdm", dest="no_progress", action="store_true", default=alias, help="= --no-progress")
    group.add_argument("--ignore-eos", action="store_true", help="send ignore_eos (random prompts always do)")
    for name in _SAMPLING:
        group.add_argument(f"--{name.replace('_', '-')}", type=int if name == "top_k" else float, help="sent in every request")
    group.add_argument("--save-result", action="store_true", help="write vLLM's result JSON")
    group.add_argument("--save-detailed", action="store_true", help="with per-request lists (ttfts, itls, texts, ...)")
    group.add_argument("--append-result", action="store_true", help="append the result as one more line of the file")
    group.add_argument("--result-dir", type=Path, help="folder of the result file [.]")
    group.add_argument("--result-filename", help="[{label}-{rate}qps[-concurrency{N}]-{model}-{date}.json]")
    group.add_argument("--metadata", metavar="KEY=VALUE", nargs="*", default=[], help="written into the result")
    group.add_argument("--percentile-metrics", default="ttft,tpot,itl", help="of ttft,tpot,itl,e2el [ttft,tpot,itl]")
    group.add_argument("--metric-percentiles", default="99", help="comma-separated [99]")
    group.add_argument("--goodput", metavar="KEY:VALUE", nargs="+", default=[], help="SLOs in ms (ttft, tpot, e2el)")
    group.add_argument("--trust-remote-code", action="store_true", help="no effect (vLLM's tokenizer loading)")
    group.add_argument("--tokenizer-mode", help="no effect")
    group.add_argument("--ready-check-timeout-sec", type=int, help="no effect (the warm-up fails loudly instead)")
    group.add_argument("--request-id-prefix", help="no effect")


def _pairs(items: list[str], sep: str, flag: str, parser: argparse.ArgumentParser) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, found, value = item.partition(sep)
        if not found or not key.strip():
            parser.error(f"{flag} {item!r}: expected KEY{sep}VALUE")
        pairs[key.strip()] = value.strip()
    return pairs


def resolve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Map the vLLM spellings onto our own arguments, and check what cannot map."""
    if args.base_url is None and (args.host or args.port):
        args.base_url = f"http://{args.host or '127.0.0.1'}:{args.port or 8000}"
    if args.endpoint is None:
        args.endpoint = _BACKEND_ENDPOINTS[args.backend] if args.backend else OURS_ENDPOINT
    if args.random_range_ratio != 0.0 or args.random_prefix_len != 0:
        parser.error("--random-range-ratio and --random-prefix-len: only 0 (every prompt has --input-len tokens)")
    if args.burstiness <= 0:
        parser.error("--burstiness must be above 0")
    if args.dataset_name is not None and args.prompts != "random":
        parser.error("--dataset-name random and --prompts tiny contradict each other")
    sampling = {name: value for name in _SAMPLING if (value := getattr(args, name)) is not None}
    if args.ignore_eos:
        sampling["ignore_eos"] = True
    if sampling:
        args.extra_body = {**sampling, **(args.extra_body or {})}
    args.metadata = _pairs(args.metadata, "=", "--metadata", parser)
    try:
        args.goodput = {k: float(v) for k, v in _pairs(args.goodput, ":", "--goodput", parser).items()}
        args.metric_percentiles = tuple(float(p) for p in args.metric_percentiles.split(","))
    except ValueError as exc:
        parser.error(f"--goodput / --metric-percentiles: {exc}")
    args.percentile_metrics = tuple(m.strip() for m in args.percentile_metrics.split(","))
    if bad := [m for m in args.percentile_metrics if m not in METRICS] + [k for k in args.goodput if k not in ("ttft", "tpot", "e2el")]:
        parser.error(f"unknown metric {bad[0]!r} (--percentile-metrics: ttft,tpot,itl,e2el; --goodput: ttft,tpot,e2el)")
    if any(not 0 <= p <= 100 for p in args.metric_percentiles) or any(v < 0 for v in args.goodput.values()):
        parser.error("--metric-percentiles must be within 0..100 and --goodput values at least 0")
    if args.append_result:
        args.save_result = True
    if args.save_result and args.compare:
        parser.error("--save-result writes one run: use it without --compare (a server, or --in-process)")
    if ignored := [f"--{name.replace('_', '-')}" for name in _NO_EFFECT if getattr(args, name) not in (None, False)]:
        print(f"ovserve bench: accepted without effect: {', '.join(ignored)}", file=sys.stderr)


def request_model(args: argparse.Namespace) -> str | None:
    """The name requests carry: vLLM's --served-model-name, else --model."""
    return args.served_model_name or args.model


def result_setup(args: argparse.Namespace, model_id: str, chat: bool) -> ResultSetup:
    return ResultSetup(
        backend=args.backend or ("openai-chat" if chat else "openai"),
        label=args.label,
        model_id=model_id,
        tokenizer_id=str(args.model_dir or args.in_process),
        num_prompts=args.num_prompts,
        request_rate=args.request_rate,
        burstiness=args.burstiness,
        max_concurrency=args.max_concurrency,
        date=datetime.now().strftime("%Y%m%d-%H%M%S"),
        metadata=args.metadata,
        percentile_metrics=args.percentile_metrics,
        metric_percentiles=args.metric_percentiles,
        goodput_ms=args.goodput,
        detailed=args.save_detailed,
    )


def write_result(args: argparse.Namespace, setup: ResultSetup, result: dict[str, Any]) -> Path:
    """Write (or with --append-result, append a line to) the result file; its path."""
    path = Path(args.result_filename or default_filename(setup))
    if args.result_dir is not None:
        args.result_dir.mkdir(parents=True, exist_ok=True)
        path = args.result_dir / path
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in result.items()}
    with path.open("a+" if args.append_result else "w", encoding="utf-8") as out:
        if args.append_result and out.tell() != 0:
            out.write("\n")
        json.dump(clean, out)
    return path

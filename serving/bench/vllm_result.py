"""vLLM's benchmark result JSON (`vllm bench serve --save-result`) from one `ovserve bench` run, so
scripts that plot or compare vLLM's result files read ours unchanged.

The keys, their order and their meaning follow vllm-project/vllm `vllm/benchmarks/serve.py`
(`main_async` and `benchmark`, read at commit def9ce85ba1079af970a58ed3d42dd861ae35d58): the run's
setup, then the totals, the per-request lists (only with `--save-detailed`, as there), the peak
figures, and mean/median/std/pNN of each selected metric in milliseconds. Times in the lists are
seconds, as there. Empty statistics are 0.0, as numpy gives vLLM for `np.mean(0)`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from serving.bench.stats import RequestResult, percentile

#: Keys of every result file, in vLLM's order, with their JSON types (None: may be null).
SETUP_KEYS: dict[str, tuple[type, ...]] = {
    "date": (str,),
    "endpoint_type": (str,),
    "backend": (str,),
    "label": (str, type(None)),
    "model_id": (str,),
    "tokenizer_id": (str,),
    "num_prompts": (int,),
    # --metadata KEY=VALUE pairs come here
    "request_rate": (float, int, str),  # "inf" when unlimited
    "burstiness": (float, int),
    "max_concurrency": (int, type(None)),
}
TOTAL_KEYS: dict[str, tuple[type, ...]] = {
    "duration": (float,),
    "completed": (int,),
    "failed": (int,),
    "total_input_tokens": (int,),
    "total_output_tokens": (int,),
    "request_throughput": (float,),
    "request_goodput": (float, type(None)),  # null without --goodput
    "output_throughput": (float,),
    "total_token_throughput": (float,),
}
#: Per-request lists, written with --save-detailed only.
DETAILED_KEYS: dict[str, tuple[type, ...]] = {
    "input_lens": (list,),
    "output_lens": (list,),
    "ttfts": (list,),  # seconds
    "itls": (list,),  # a list of gaps (seconds) per request
    "generated_texts": (list,),
    "errors": (list,),  # "" for a request that succeeded
}
PEAK_KEYS: dict[str, tuple[type, ...]] = {
    "max_output_tokens_per_s": (float,),
    "max_concurrent_requests": (int,),
}
METRICS = ("ttft", "tpot", "itl", "e2el")
DEFAULT_PERCENTILE_METRICS = ("ttft", "tpot", "itl")
DEFAULT_METRIC_PERCENTILES = (99.0,)


def metric_keys(metrics: Sequence[str], percentiles: Sequence[float]) -> list[str]:
    """mean_ttft_ms, median_ttft_ms, std_ttft_ms, p99_ttft_ms, ... (p99.9 keeps its decimal)."""
    keys = []
    for name in metrics:
        keys += [f"mean_{name}_ms", f"median_{name}_ms", f"std_{name}_ms"]
        keys += [f"p{_percentile_word(p)}_{name}_ms" for p in percentiles]
    return keys


def _percentile_word(p: float) -> str:
    return str(int(p)) if int(p) == p else str(p)


@dataclass(frozen=True, slots=True)
class ResultSetup:
    backend: str  # "openai" (completions) or "openai-chat"
    label: str | None
    model_id: str
    tokenizer_id: str
    num_prompts: int
    request_rate: float
    burstiness: float
    max_concurrency: int | None
    date: str  # %Y%m%d-%H%M%S, as vLLM
    metadata: dict[str, str] = field(default_factory=dict)
    percentile_metrics: tuple[str, ...] = DEFAULT_PERCENTILE_METRICS
    metric_percentiles: tuple[float, ...] = DEFAULT_METRIC_PERCENTILES
    goodput_ms: dict[str, float] = field(default_factory=dict)  # SLOs: ttft / tpot / e2el
    detailed: bool = False


def _stats(values: Sequence[float], percentiles: Sequence[float]) -> tuple[float, float, float, list[float]]:
    """mean, median, population std, percentiles, in ms; all 0.0 when empty (numpy on [0])."""
    ms = [v * 1000.0 for v in values] or [0.0]
    mean = sum(ms) / len(ms)
    std = math.sqrt(sum((v - mean) ** 2 for v in ms) / len(ms))
    return mean, percentile(ms, 50), std, [percentile(ms, p) for p in percentiles]


def _tpot(r: RequestResult) -> float:
    """vLLM's TPOT of one request (0 for one token: counted so for goodput, left out of the stats)."""
    return r.tpot or 0.0


def _good(r: RequestResult, slo_ms: dict[str, float]) -> bool:
    measured = {"ttft": r.ttft or 0.0, "tpot": _tpot(r), "e2el": r.e2e}
    return all(measured[name] <= limit / 1000.0 for name, limit in slo_ms.items())


def _peaks(done: Sequence[RequestResult]) -> tuple[float, int]:
    """Most content chunks in one wall-clock second (vLLM counts a token per chunk time it sees)
    and most requests active in one second, over one-second buckets from the first start."""
    if not done:
        return 0.0, 0
    origin = min(r.start for r in done)
    buckets = int(math.ceil(max(r.end for r in done) - origin)) + 1
    tokens = [0] * buckets
    active = [0] * buckets
    for r in done:
        for t in r.chunk_times:
            tokens[min(int(t - origin), buckets - 1)] += 1
        for second in range(int(r.start - origin), int(r.end - origin) + 1):
            active[second] += 1
    return float(max(tokens)), max(active)


def build_result(setup: ResultSetup, results: Sequence[RequestResult], input_lens: Sequence[int], duration_s: float) -> dict[str, Any]:
    """The result file's JSON object for one run (`input_lens`: each prompt's token count)."""
    done = [r for r in results if r.ok]
    output_lens = [r.output_tokens if r.ok else 0 for r in results]
    total_input = sum(n for n, r in zip(input_lens, results, strict=True) if r.ok)
    total_output = sum(output_lens)
    duration = max(duration_s, 1e-9)
    result: dict[str, Any] = {
        "date": setup.date,
        "endpoint_type": setup.backend,
        "backend": setup.backend,
        "label": setup.label,
        "model_id": setup.model_id,
        "tokenizer_id": setup.tokenizer_id,
        "num_prompts": setup.num_prompts,
        **setup.metadata,
        "request_rate": "inf" if math.isinf(setup.request_rate) else setup.request_rate,
        "burstiness": setup.burstiness,
        "max_concurrency": setup.max_concurrency,
        "duration": duration_s,
        "completed": len(done),
        "failed": len(results) - len(done),
        "total_input_tokens": total_input,
        "total_output_tokens": total_output,
        "request_throughput": len(done) / duration,
        "request_goodput": sum(_good(r, setup.goodput_ms) for r in done) / duration if setup.goodput_ms else None,
        "output_throughput": total_output / duration,
        "total_token_throughput": (total_input + total_output) / duration,
    }
    if setup.detailed:
        result.update(
            input_lens=list(input_lens),
            output_lens=output_lens,
            ttfts=[(r.ttft or 0.0) if r.ok else 0.0 for r in results],
            itls=[r.itls if r.ok else [] for r in results],
            generated_texts=[r.text for r in results],
            errors=[r.error or "" for r in results],
        )
    peak_tokens, peak_requests = _peaks(done)
    result.update(max_output_tokens_per_s=peak_tokens, max_concurrent_requests=peak_requests)
    samples = {
        "ttft": [r.ttft or 0.0 for r in done],
        "tpot": [t for r in done if (t := r.tpot) is not None],
        "itl": [gap for r in done for gap in r.itls],
        "e2el": [r.e2e for r in done],
    }
    for name in setup.percentile_metrics:
        mean, median, std, values = _stats(samples[name], setup.metric_percentiles)
        result.update({f"mean_{name}_ms": mean, f"median_{name}_ms": median, f"std_{name}_ms": std})
        for p, value in zip(setup.metric_percentiles, values, strict=True):
            result[f"p{_percentile_word(p)}_{name}_ms"] = value
    return result


def default_filename(setup: ResultSetup) -> str:
    """vLLM's name: {label}-{rate}qps[-concurrency{N}]-{model's last path part}-{date}.json."""
    concurrency = f"-concurrency{setup.max_concurrency}" if setup.max_concurrency is not None else ""
    label = setup.label or setup.backend
    return f"{label}-{setup.request_rate}qps{concurrency}-{setup.model_id.split('/')[-1]}-{setup.date}.json"

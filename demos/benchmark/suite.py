"""`make bench`: every performance target of the project in one run, and `bench.json`.

Each ratio is measured within one run of `ovserve bench --compare` (server, then the engine
in-process, same workload), because this 2-core machine is shared and noisy: compare numbers
from the same run only. Each comparison runs five times (seeds 0-4); the table shows the median
of each figure, and bench.json keeps every run. Steps:

1. synthetic model (hidden 512, 8 layers, untrained), input/output 128/128, 64 prompts, concurrency 32
2. the same at concurrency 1 (16 prompts): inter-token latency against the engine's
3. the trained tiny model at concurrency 32 (256 prompts): where our overhead shows; also with
   `--stream_interval_ms 3` (progress shares messages when engine steps take under 3 ms)
4. one ovserve server on the synthetic model: concurrency 16 on chat (for the peer comparison),
   and the prefix-caching check (second turn of a 1,000-token chat against the first)
5. the peer (openvino-openai-api, its own venv) on the same model and workload at concurrency 16
6. speculative decoding: the tiny model served plain, with the tiny draft model
   (`--draft_models_path`) and with prompt lookup (`--plugin_config '{"prompt_lookup": true}'`),
   each on the same workload (the tiny model's trained chat prompts, answered to their end,
   greedy) at concurrency 1 and 8: output tok/s, ITL and TPOT, and the ratios to plain
7. per-request traces: the tiny model served without and with `--trace` (every request traced),
   alternating, five `--compare` runs each (128 prompts, 128/256 tokens, concurrency 32): the
   server process's CPU per output token (from /proc) and the server/engine throughput ratio
8. the real model (demos/benchmark/real_model.py): ovserve, the engine in-process and llama.cpp's
   llama-server on SmolLM2's GGUF at concurrency 1, 8 and 32, RSS, the first burst, a long
   prompt among 8 streams; the `real_*` keys, and a PNG beside the JSON (bench.png)
9. the tiny VLM (demos/benchmark/vlm.py): requests/s of 1-image chats at concurrency 4, ovserve
   against the engine in process (same images, same prompts), alternating rounds; the `vlm_*` keys

`--only audio`: the toy Whisper's transcription latency through the server against WhisperPipeline
in process (demos/benchmark/audio.py; not in the full run).
`--only images`: the toy Stable Diffusion's generation, edit and inpainting latency through the
server against Text2Image/Image2Image/InpaintingPipeline in process (demos/benchmark/images.py; not in the full run).
`--only speech`: the toy SpeechT5's speech latency through the server against Text2SpeechPipeline
in process (demos/benchmark/speech.py; not in the full run).

Usage: python demos/benchmark/suite.py [--json bench.json] [--skip-peer] [--only speculative|trace|real|vlm|audio|images|speech]
(--skip-peer leaves out both peers: openvino-openai-api and llama-server)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]

import audio  # noqa: E402
import images  # noqa: E402
import real_model  # noqa: E402
import real_model_report  # noqa: E402
import speech  # noqa: E402
import vlm  # noqa: E402
from real_model_report import REAL_TARGETS  # noqa: E402

from serving.bench import cli as bench  # noqa: E402
from serving.bench.prefix import run_prefix_cache_check  # noqa: E402
from serving.bench.server_process import start_server  # noqa: E402
from tests.models import build_synthetic_model, build_tiny_draft_model, build_tiny_model  # noqa: E402

WORKLOAD = ["--input-len", "128", "--output-len", "128", "--no-progress"]
TARGETS = {  # key: (comparison, bound, what)
    "throughput_ratio_c32": (">=", 0.92, "output tok/s, server/engine, synthetic c32"),
    "ttft_ratio_c32": ("<=", 1.15, "TTFT p50, server/engine, synthetic c32"),
    "itl_delta_ms_c1": ("<=", 1.0, "ITL p50 server - engine (ms), synthetic c1"),
    "loop_lag_p99_ms": ("<=", 10.0, "event-loop lag p99 (ms) while busy, synthetic c32"),
    "tiny_throughput_ratio_c32": (">=", 0.6, "output tok/s, server/engine, tiny c32 (aim)"),
    "tiny_throughput_ratio_c32_interval3": (">=", 0.6, "the same with --stream_interval_ms 3 (aim)"),
    "prefix_ttft_ratio": ("<=", 0.3, "TTFT of turn 2 / turn 1, 1,000-token chat"),
    "peer_throughput_ratio_c16": (">=", 5.0, "output tok/s, ovserve/peer, synthetic c16"),
    **REAL_TARGETS,
}


def run_bench(args: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.json"
        code = bench.main([*args, "--json", str(out)])
        report: dict[str, Any] = json.loads(out.read_text())
    if code != 0:
        print(f"suite: some requests failed in: ovserve bench {' '.join(args)}", file=sys.stderr)
    return report


REPEATS = 5


def median_run(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run whose `key` is the (upper) median: it stands for all of them."""
    return sorted(runs, key=lambda r: r[key])[len(runs) // 2]


def compare(model: Path, *extra: str) -> dict[str, Any]:
    """`--compare` REPEATS times (each a server run then an engine run, ratios within the run);
    the run whose throughput ratio is the median stands for all, the others are kept too."""
    runs = [run_bench(["--compare", "--model-dir", str(model), *WORKLOAD, *extra, "--seed", str(i)]) for i in range(REPEATS)]
    median = dict(median_run(runs, "throughput_ratio"))
    for key in ("ttft_p50_ratio", "itl_p50_delta_ms", "loop_lag_p99_ms"):  # each figure's own median over the runs
        values = [r[key] for r in runs if r.get(key) is not None]
        median[key] = statistics.median_high(values) if values else None
    median["repeats"] = [{k: r.get(k) for k in ("throughput_ratio", "ttft_p50_ratio", "itl_p50_delta_ms", "loop_lag_p99_ms")} for r in runs]
    return median


def ovserve_c16_and_prefix(synthetic: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    server = start_server("--model_path", str(synthetic), "--model_name", "bench")
    try:
        c16 = run_bench(
            ["--base-url", server.base_url, "--model", "bench", "--model-dir", str(synthetic), *WORKLOAD]
            + ["--num-prompts", "64", "--max-concurrency", "16"]
        )
        from calculators.llm.model_files import ModelTokenizer

        tokenizer = ModelTokenizer.load(synthetic)
        prefix = run_prefix_cache_check(
            server.base_url, "bench", first_tokens=1000, count_tokens=lambda text: len(tokenizer.encode(text, False)), rounds=3
        )
    finally:
        server.stop()
    return c16, prefix


def peer_c16(synthetic: Path) -> dict[str, Any]:
    import peer  # demos/benchmark/peer.py

    port = 8790
    process = peer.start(synthetic, port, ignore_eos=True)
    try:
        return run_bench(
            ["--base-url", f"http://127.0.0.1:{port}", "--endpoint", "/v1/chat/completions", "--model", "peer"]
            + ["--model-dir", str(synthetic), *WORKLOAD, "--num-prompts", "64", "--max-concurrency", "16", "--tokens-from", "requested"]
        )
    finally:
        peer.stop(process)


SPECULATIVE_VARIANTS = {
    "plain": [],
    "draft": ["--draft_models_path", "DRAFT"],
    "prompt_lookup": ["--plugin_config", '{"prompt_lookup": true}'],
}
SPECULATIVE_CONCURRENCY = (1, 8)


def speculative(tiny: Path, draft: Path, repeats: int = 3) -> dict[str, Any]:
    """One server per variant; per concurrency the same fixed workload `repeats` times (seeds),
    the run with the median throughput kept. Ratios are to the plain server's figures."""
    runs: dict[str, Any] = {}
    for name, flags in SPECULATIVE_VARIANTS.items():
        server = start_server("--model_path", str(tiny), "--model_name", "bench", *[str(draft) if f == "DRAFT" else f for f in flags])
        try:
            for concurrency in SPECULATIVE_CONCURRENCY:
                reports = [
                    run_bench(
                        ["--base-url", server.base_url, "--model", "bench", "--model-dir", str(tiny), "--prompts", "tiny"]
                        + ["--output-len", "200", "--num-prompts", str(40 * concurrency), "--max-concurrency", str(concurrency)]
                        + ["--no-progress", "--seed", str(seed)]
                    )
                    for seed in range(repeats)
                ]
                report = median_run(reports, "output_throughput")
                runs[f"{name}_c{concurrency}"] = {
                    "output_throughput": report["output_throughput"],
                    "itl_p50_ms": report["itl_ms"]["p50"],
                    "tpot_p50_ms": report["tpot_ms"]["p50"],
                    "ttft_p50_ms": report["ttft_ms"]["p50"],
                    "mean_output_tokens": report["mean_output_tokens"],
                    "failed": report["failed"],
                    "repeats_output_throughput": [r["output_throughput"] for r in reports],
                }
        finally:
            server.stop()
    for name in ("draft", "prompt_lookup"):
        for concurrency in SPECULATIVE_CONCURRENCY:
            base, run = runs[f"plain_c{concurrency}"], runs[f"{name}_c{concurrency}"]
            run["throughput_ratio_to_plain"] = run["output_throughput"] / base["output_throughput"]
            run["tpot_ratio_to_plain"] = run["tpot_p50_ms"] / base["tpot_p50_ms"]
    return runs


def print_speculative(runs: dict[str, Any]) -> None:
    print(
        f"\n{'speculative decoding (tiny model)':<34}{'tok/s':>9}{'x plain':>9}{'TPOT p50':>10}{'ITL p50':>9}{'TTFT p50':>10}{'tokens':>8}"
    )
    for key, run in runs.items():
        ratio = run.get("throughput_ratio_to_plain")
        print(
            f"{key:<34}{run['output_throughput']:>9.1f}{'' if ratio is None else f'{ratio:.2f}':>9}"
            f"{run['tpot_p50_ms']:>9.2f} {run['itl_p50_ms']:>8.2f} {run['ttft_p50_ms']:>9.2f} {run['mean_output_tokens']:>7.1f}"
        )


TRACE_WORKLOAD = ["--input-len", "128", "--output-len", "256", "--num-prompts", "128", "--max-concurrency", "32", "--no-progress"]


def trace_overhead(tiny: Path) -> dict[str, Any]:
    """Step 7: off and --trace alternate, so both see the same machine; medians over REPEATS."""
    rounds: dict[str, list[dict[str, float]]] = {"off": [], "trace": []}
    for seed in range(REPEATS):
        for mode, extra in (("off", []), ("trace", ["--server-arg=--trace"])):
            report = run_bench(["--compare", "--model-dir", str(tiny), *TRACE_WORKLOAD, *extra, "--seed", str(seed)])
            server = report["server"]
            rounds[mode].append(
                {
                    "main_cpu_us_per_token": server["server_cpu_s"]["main"] / server["total_output_tokens"] * 1e6,
                    "throughput_ratio": report["throughput_ratio"],
                    "failed": server["failed"],
                }
            )

    keys = ("main_cpu_us_per_token", "throughput_ratio")
    result: dict[str, Any] = {mode: {key: statistics.median_high(r[key] for r in rounds[mode]) for key in keys} for mode in rounds}
    result["cpu_ratio_trace_to_off"] = result["trace"]["main_cpu_us_per_token"] / result["off"]["main_cpu_us_per_token"]
    result["rounds"] = rounds
    return result


def print_trace_overhead(trace: dict[str, Any]) -> None:
    print(f"\n{'per-request traces (tiny, c32)':<34}{'server CPU us/token':>21}{'server/engine tok/s':>21}")
    for mode in ("off", "trace"):
        print(f"{mode:<34}{trace[mode]['main_cpu_us_per_token']:>21.1f}{trace[mode]['throughput_ratio']:>21.3f}")
    print(f"{'--trace / off (CPU per token)':<34}{trace['cpu_ratio_trace_to_off']:>21.3f}")


def verdict(key: str, value: float | None) -> str:
    return real_model_report.verdict(key, value, TARGETS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=ROOT / "bench.json")
    parser.add_argument("--skip-peer", action="store_true", help="leave out the peers (openvino-openai-api, llama-server)")
    parser.add_argument(
        "--only",
        choices=["speculative", "trace", "real", "vlm", "audio", "images", "speech"],
        help="run this step alone (its figures only in the JSON)",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.only == "speculative":
        spec = speculative(build_tiny_model(), build_tiny_draft_model())
        print_speculative(spec)
        args.json.write_text(json.dumps({"speculative": spec, "elapsed_s": time.monotonic() - started}, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
        return 0
    if args.only == "trace":
        trace = trace_overhead(build_tiny_model())
        print_trace_overhead(trace)
        args.json.write_text(json.dumps({"trace": trace, "elapsed_s": time.monotonic() - started}, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
        return 0
    if args.only == "real":
        real_model.run(args.json, args.json.with_suffix(".png"), skip_peer=args.skip_peer)
        return 0
    if args.only == "vlm":
        vlm.run(args.json)
        return 0
    if args.only == "images":  # the toy Stable Diffusion's latency, server vs engine (demos/benchmark/images.py)
        images.run(args.json)
        return 0
    if args.only == "audio":  # the toy Whisper's latency, server vs engine (demos/benchmark/audio.py)
        audio.run(args.json)
        return 0
    if args.only == "speech":  # the toy SpeechT5's latency, server vs engine (demos/benchmark/speech.py)
        speech.run(args.json)
        return 0
    synthetic, tiny = build_synthetic_model(), build_tiny_model()
    runs: dict[str, Any] = {}
    runs["synthetic_c32"] = compare(synthetic, "--num-prompts", "64", "--max-concurrency", "32")
    runs["synthetic_c1"] = compare(synthetic, "--num-prompts", "16", "--max-concurrency", "1")
    runs["tiny_c32"] = compare(tiny, "--num-prompts", "256", "--max-concurrency", "32")
    runs["tiny_c32_interval3"] = compare(tiny, "--num-prompts", "256", "--max-concurrency", "32", "--stream-interval-ms", "3")
    runs["ovserve_c16"], runs["prefix"] = ovserve_c16_and_prefix(synthetic)
    if not args.skip_peer:
        runs["peer_c16"] = peer_c16(synthetic)
    runs["speculative"] = speculative(tiny, build_tiny_draft_model())
    runs["trace"] = trace_overhead(tiny)
    real = real_model.run(None, args.json.with_suffix(".png"), skip_peer=args.skip_peer)
    vision = vlm.run(None)
    peer_tps = runs.get("peer_c16", {}).get("output_throughput")
    results = {
        "throughput_ratio_c32": runs["synthetic_c32"]["throughput_ratio"],
        "ttft_ratio_c32": runs["synthetic_c32"]["ttft_p50_ratio"],
        "itl_delta_ms_c1": runs["synthetic_c1"]["itl_p50_delta_ms"],
        "loop_lag_p99_ms": runs["synthetic_c32"]["loop_lag_p99_ms"],
        "tiny_throughput_ratio_c32": runs["tiny_c32"]["throughput_ratio"],
        "tiny_throughput_ratio_c32_interval3": runs["tiny_c32_interval3"]["throughput_ratio"],
        "prefix_ttft_ratio": runs["prefix"]["prefix_ttft_ratio"],
        "peer_throughput_ratio_c16": runs["ovserve_c16"]["output_throughput"] / peer_tps if peer_tps else None,
        **{key: real[key] for key in REAL_TARGETS},
    }
    elapsed = time.monotonic() - started
    print("\n" + "=" * 100)
    print(f"{'figure':<40}{'value':>12}  {'target':<10}{'':<10}what")
    for key, value in results.items():
        op, bound, what = TARGETS[key]
        shown = "-" if value is None else f"{value:.3f}"
        print(f"{key:<40}{shown:>12}  {op + ' ' + str(bound):<10}{verdict(key, value):<10}{what}")
    print_speculative(runs["speculative"])
    print_trace_overhead(runs["trace"])
    print(
        f"\n{'VLM 1-image chats, c4 (tiny VLM)':<34}server {vision['vlm_rps_server_c4']:.1f} req/s, engine in process "
        f"{vision['vlm_rps_engine_c4']:.1f} req/s, server/engine {vision['vlm_rps_ratio_c4']:.3f}"
    )
    print(f"(whole suite: {elapsed / 60:.1f} min; models: synthetic {synthetic.name}, tiny {tiny.name})")
    real_raw = {k: v for k, v in real.items() if k not in REAL_TARGETS and k != "verdicts"}  # real_figures, real_rss_mib, ...
    report = {
        **results,
        **real_raw,
        **vision,
        "verdicts": {k: verdict(k, v) for k, v in results.items()},
        "elapsed_s": elapsed,
        "runs": runs,
    }
    args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

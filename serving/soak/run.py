"""`ovserve soak`: mixed traffic against a real server for a while; fails on what must not happen.

    ovserve soak                                  # builds the demo model, starts a server, 600 s
    ovserve soak --seconds 60 --json soak.json
    ovserve soak --base-url http://127.0.0.1:8000  # an already running server (the tiny model)

A bounded number of clients (asyncio, aiohttp) send, each one request at a time: chat and
completions, unary and streaming, on the demo model's known prompts (exact answers checked);
clients that disconnect before the first token and in mid-stream; bad input (invalid JSON, wrong
types, an unknown model, a prompt longer than the context); tokenize; the models list; health
checks; KServe v2 REST infer; /metrics when the server serves it. Meanwhile the resident memory
(RSS) of the server's process tree (the server and its engine workers) is sampled every second.

The run FAILS (exit code 1) on: any 5xx; a wrong answer to a known prompt; an unexpected status
or an error event in a stream; a request not done within --stuck-seconds; RSS growth beyond
--rss-growth from just after warm-up to the end (medians of a window each, so allocator noise
does not count); requests still live in an engine once the traffic has stopped; an engine worker
restart; a traceback in the log of a server started here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

from serving import dev_models
from serving.bench.server_process import process_tree_rss
from serving.soak.report import Report, rss_verdict
from serving.soak.traffic import WEIGHTS, Traffic, get_json


def pid_listening_on(port: int) -> int | None:
    """The process (of this user) that listens on TCP `port`, from /proc; None if not found."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(entry.name)
        except OSError:
            continue
    return None


def _engines(stats: Any) -> dict[str, dict[str, Any]]:
    """Every engine resource in /debug/stats, as "servable/resource" -> its figures."""
    out = {}
    for name, servable in (stats or {}).get("servables", {}).items():
        for resource, figures in (servable.get("resources") or {}).items():
            if isinstance(figures, dict) and "active_requests" in figures:
                out[f"{name}/{resource}"] = figures
    return out


async def soak(
    base_url: str,
    seconds: float,
    clients: int,
    model: str,
    pid: int | None,
    stuck_s: float = 60.0,
    max_rss_growth: float = 0.10,
    check_answers: bool = True,
    quiet: bool = False,
) -> Report:
    report = Report(base_url, seconds, clients, rss_max_growth=max_rss_growth)
    traffic = Traffic(base_url, model, check_answers, report)
    connector = aiohttp.TCPConnector(limit=clients + 4)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        weights = dict(WEIGHTS)
        async with session.get(traffic.url("/metrics")) as response:
            if response.status != 200:
                weights.pop("metrics")  # served only with --metrics_enable
        restarts_before = sum(e.get("restarts", 0) for e in _engines(await get_json(session, traffic.url("/debug/stats"))).values())
        kinds, chances = list(weights), list(weights.values())
        start = time.monotonic()
        deadline = start + seconds
        samples: list[tuple[float, int]] = []

        async def sample_rss() -> None:
            next_at = time.monotonic()
            while True:
                if pid is not None and (rss := process_tree_rss(pid)) is not None:
                    samples.append((time.monotonic() - start, rss["main"] + rss["children"]))
                    if len(samples) % 10 == 1:  # every 10 s: the server and its children apart
                        report.timeline.append((round(samples[-1][0]), rss["main"], rss["children"]))
                next_at += 1.0
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))

        async def progress() -> None:
            while True:
                await asyncio.sleep(30)
                rss = f", RSS {samples[-1][1] / 2**20:.0f} MiB" if samples else ""
                print(
                    f"soak: {time.monotonic() - start:4.0f} s, {sum(report.sent.values())} requests, "
                    f"failures {sum(report.failures.values())}{rss}",
                    file=sys.stderr,
                    flush=True,
                )

        async def client() -> None:
            while time.monotonic() < deadline:
                await traffic.run_one(session, random.choices(kinds, chances)[0], stuck_s)

        helpers = [asyncio.create_task(sample_rss())]
        if not quiet:
            helpers.append(asyncio.create_task(progress()))
        try:
            await asyncio.gather(*(client() for _ in range(clients)))
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        report.rss = rss_verdict(samples, seconds)
        if report.rss.growth is not None and report.rss.growth > max_rss_growth:
            report.fail("rss_growth", f"RSS grew {report.rss.growth:+.1%} after warm-up (limit {max_rss_growth:+.0%})")
        # Traffic has stopped: every engine must show no live request, soon.
        stopped = time.monotonic()
        engines: dict[str, dict[str, Any]] = {}
        while time.monotonic() - stopped < 30:
            engines = _engines(await get_json(session, traffic.url("/debug/stats")))
            if all(e.get("active_requests", 0) == 0 and e.get("running", 0) == 0 for e in engines.values()):
                report.live_after_s = time.monotonic() - stopped
                break
            await asyncio.sleep(0.2)
        else:
            report.live_left = {name: {k: e.get(k) for k in ("active_requests", "running")} for name, e in engines.items()}
            report.fail("live_requests", f"engines still have live requests 30 s after the traffic stopped: {report.live_left}")
        report.restarts = sum(e.get("restarts", 0) for e in engines.values()) - restarts_before
        if report.restarts:
            report.fail("engine_restarts", f"{report.restarts} engine worker restart(s) during the soak")
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ovserve soak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=600.0, help="how long to send traffic [600]")
    parser.add_argument("--clients", type=int, default=12, help="concurrent clients, one request at a time each [12]")
    parser.add_argument("--base-url", help="soak this running server (default: start one here on a free port)")
    parser.add_argument("--server-pid", type=int, help="with --base-url: the server's pid for RSS [found from the port]")
    parser.add_argument("--config_path", type=Path, help="config.json of the server started here [the demo's, built if needed]")
    parser.add_argument(
        "--kv-blocks",
        type=int,
        default=1024,
        help="server started here: KV cache of this many blocks (1024: 32768 tokens, 16 MiB on the demo model) instead of "
        "the stock 1 GB, whose pages are touched for the first time over minutes and would look like growth; 0: 1 GB [1024]",
    )
    parser.add_argument("--model", default="tiny", help="model name in requests [tiny]")
    parser.add_argument("--no-check-answers", action="store_true", help="do not check answers (a model other than the demo's)")
    parser.add_argument("--stuck-seconds", type=float, default=60.0, help="a request not done after this long fails the run [60]")
    parser.add_argument("--rss-growth", type=float, default=0.10, help="largest RSS growth after warm-up, as a fraction [0.10]")
    parser.add_argument("--json", type=Path, help="also write the summary as JSON to this file ('-': stdout)")
    parser.add_argument("--seed", type=int, help="random seed of the traffic mix")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.seed is not None:
        random.seed(args.seed)
    from serving import event_loop

    server = None
    if args.base_url:
        base_url = args.base_url
        pid = args.server_pid or pid_listening_on(URL(base_url).port or 80)
    else:
        from serving.bench.server_process import start_server

        config = args.config_path
        if config is None:
            from serving.demo import write_servable

            config = write_servable(Path(".cache/soak").resolve(), dev_models.models().build_tiny_model())
            if args.kv_blocks:  # see --kv-blocks
                graph = config.parent / "tiny" / "graph.pbtxt"
                graph.write_text(graph.read_text().replace("cache_size: 1\n", f"cache_size: 1\n      num_kv_blocks: {args.kv_blocks}\n"))
        server = start_server("--config_path", str(config), "--metrics_enable")
        base_url, pid = server.base_url, server.process.pid
        print(f"soak: server {base_url} (pid {pid}) for {args.seconds:.0f} s", file=sys.stderr, flush=True)
    try:
        report = event_loop.run(
            soak(
                base_url,
                args.seconds,
                args.clients,
                args.model,
                pid,
                stuck_s=args.stuck_seconds,
                max_rss_growth=args.rss_growth,
                check_answers=not args.no_check_answers,
                quiet=args.quiet,
            )
        )
    finally:
        if server is not None:
            code = server.stop()
    if server is not None:
        tracebacks = sum("Traceback" in line for line in server.output)
        report.server_log = {
            "exit_code": code,
            "error_lines": sum(" ERROR " in line for line in server.output),
            "tracebacks": tracebacks,
        }
        if tracebacks:
            first = next(i for i, line in enumerate(server.output) if "Traceback" in line)
            report.fail("server_traceback", "\n".join(server.output[max(0, first - 2) : first + 25]))
        if code != 0:
            report.fail("server_exit", f"the server exited with {code}")
    print(report.format())
    if args.json is not None:
        text = json.dumps(report.as_dict(), indent=2)
        if str(args.json) == "-":
            print(text)
        else:
            args.json.write_text(text + "\n")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())

"""The harness the media benches share (audio.py, images.py, speech.py): one kind of request
timed through the server and through the engine in process, in alternating rounds.

After a warm-up of each side, `rounds` rounds of `requests` requests, each side first in every
other round (so neither always runs on a machine the other just warmed or loaded); per round the
median latency of each and their ratio (server / engine); the medians of those are the result,
under `<prefix>_latency_ms_server`, `<prefix>_latency_ms_engine` and `<prefix>_latency_ratio`.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

Round = Callable[[int], list[float]]  # runs that many requests one at a time; their latencies in seconds
Log = Callable[[str], None]


def measure(
    prefix: str,
    title: str,
    server_round: Round,
    engine_round: Round,
    *,
    rounds: int,
    requests: int,
    warmup: int,
    log: Log,
    label: str = "",
) -> dict[str, float]:
    """The three medians under `prefix`; logs each round (after `label`) and a summary line under `title`."""
    server_round(warmup)
    engine_round(warmup)
    ratios, server_ms, engine_ms = [], [], []
    for index in range(rounds):
        if index % 2 == 0:
            served = server_round(requests)
            direct = engine_round(requests)
        else:
            direct = engine_round(requests)
            served = server_round(requests)
        s, e = statistics.median(served) * 1000, statistics.median(direct) * 1000
        server_ms.append(s)
        engine_ms.append(e)
        ratios.append(s / e)
        log(f"{label}round {index + 1}: server {s:.2f} ms, engine in process {e:.2f} ms (medians), ratio {s / e:.3f}")
    result = {
        f"{prefix}_latency_ms_server": statistics.median(server_ms),
        f"{prefix}_latency_ms_engine": statistics.median(engine_ms),
        f"{prefix}_latency_ratio": statistics.median(ratios),
    }
    server, engine, ratio = result.values()
    log(f"{title}: server {server:.2f} ms, engine in process {engine:.2f} ms, server/engine {ratio:.3f}")
    return result


def write_json(result: dict[str, Any], json_path: Path | None, log: Log) -> None:
    if json_path is not None:
        json_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        log(f"wrote {json_path}")


Run = Callable[[Path, int, int], object]  # a bench's run(json_path, rounds, requests)


def main(doc: str | None, run: Run, default_json: Path, default_requests: int, argv: list[str] | None) -> int:
    """A bench's command line: `--json`, `--rounds`, `--requests`, handed to its `run`."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=default_json)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=default_requests)
    args = parser.parse_args(argv)
    run(args.json, args.rounds, args.requests)
    return 0

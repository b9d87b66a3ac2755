"""The image generation bench (issue 22): per-request latency of a generation through ovserve
against openvino-genai's Text2ImagePipeline called in this process, on the toy Stable Diffusion
(tests/models/diffusion.py: random weights), same prompt, size, steps and seed.

Workload: one 32x32 image of "a photo of a red cat", 4 denoising steps, rng_seed 7, one request
at a time (the servable runs one generation at a time).

1. ovserve `--model_path <toy SD> --task image_generation` on a free port; each request is a
   `POST /v3/images/generations` JSON body on one keep-alive connection: the server runs the
   graph and generate() in the resource's thread, encodes the PNG, answers base64 JSON.
2. The engine in this process: `Text2ImagePipeline(folder, "CPU")` and `generate(...)` with the
   same arguments, plus the same PNG encoding (Pillow), so both sides make the same bytes.

After a warm-up the two alternate for `--rounds` rounds of `--requests` requests (each side first
in every other round); per round the median latency of each and their ratio (server / engine);
the median ratio is reported. Alone:
    python demos/benchmark/images.py [--json bench-images.json] [--rounds 5] [--requests 16]
or `python demos/benchmark/suite.py --only images`.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]

from calculators.image.pixels import encode_png  # noqa: E402
from serving.bench.server_process import start_server  # noqa: E402
from tests.models import build_tiny_diffusion  # noqa: E402

MODEL_NAME = "sd"
PROMPT = "a photo of a red cat"
SIDE, STEPS, SEED = 32, 4, 7


def server_round(conn: http.client.HTTPConnection, requests: int, expected: bytes) -> list[float]:
    body = json.dumps({"model": MODEL_NAME, "prompt": PROMPT, "size": f"{SIDE}x{SIDE}", "num_inference_steps": STEPS, "rng_seed": SEED})
    latencies = []
    for _ in range(requests):
        started = time.perf_counter()
        conn.request("POST", "/v3/images/generations", body=body, headers={"Content-Type": "application/json"})
        reply = conn.getresponse().read()
        latencies.append(time.perf_counter() - started)
        if base64.b64decode(json.loads(reply)["data"][0]["b64_json"]) != expected:
            raise RuntimeError(f"the server's image differs from the engine's: {reply[:200]!r}")
    return latencies


def engine_once(pipeline: Any) -> bytes:
    import numpy as np

    tensor = pipeline.generate(PROMPT, width=SIDE, height=SIDE, num_inference_steps=STEPS, rng_seed=SEED, num_images_per_prompt=1)
    return encode_png(np.ascontiguousarray(np.asarray(tensor.data)[0]))


def engine_round(pipeline: Any, requests: int, expected: bytes) -> list[float]:
    latencies = []
    for _ in range(requests):
        started = time.perf_counter()
        png = engine_once(pipeline)
        latencies.append(time.perf_counter() - started)
        if png != expected:
            raise RuntimeError("the engine's image changed between runs")
    return latencies


def run(json_path: Path | None, rounds: int = 5, requests: int = 16, log: Callable[[str], None] = print) -> dict[str, Any]:
    import openvino_genai as ov_genai

    model_dir = build_tiny_diffusion()
    server = start_server("--model_path", str(model_dir), "--model_name", MODEL_NAME, "--task", "image_generation")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
    try:
        pipeline = ov_genai.Text2ImagePipeline(str(model_dir), "CPU")
        expected = engine_once(pipeline)
        engine_round(pipeline, 4, expected)  # warm-up
        server_round(conn, 4, expected)
        ratios, server_ms, engine_ms = [], [], []
        for index in range(rounds):
            if index % 2 == 0:
                served = server_round(conn, requests, expected)
                direct = engine_round(pipeline, requests, expected)
            else:
                direct = engine_round(pipeline, requests, expected)
                served = server_round(conn, requests, expected)
            s, e = statistics.median(served) * 1000, statistics.median(direct) * 1000
            server_ms.append(s)
            engine_ms.append(e)
            ratios.append(s / e)
            log(f"round {index + 1}: server {s:.2f} ms, engine in process {e:.2f} ms (medians), ratio {s / e:.3f}")
    finally:
        conn.close()
        server.stop()
    result = {
        "images_latency_ms_server": statistics.median(server_ms),
        "images_latency_ms_engine": statistics.median(engine_ms),
        "images_latency_ratio": statistics.median(ratios),
        "rounds": rounds,
        "requests_per_round": requests,
    }
    log(
        f"image generation latency (toy SD, {SIDE}x{SIDE}, {STEPS} steps, c1): server {result['images_latency_ms_server']:.2f} ms, "
        f"engine in process {result['images_latency_ms_engine']:.2f} ms, server/engine {result['images_latency_ratio']:.3f}"
    )
    if json_path is not None:
        json_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        log(f"wrote {json_path}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=ROOT / "bench-images.json")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=16)
    args = parser.parse_args(argv)
    run(args.json, args.rounds, args.requests)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

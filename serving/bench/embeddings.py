"""`ovserve bench-embeddings`: sentences/s and request latency of `POST /v3/embeddings`.

N requests of `--batch-size` synthetic sentences each (a seeded word list, 10-20 words) are sent with
at most `--max-concurrency` in flight. `--compare` also runs the same batches in process (the
served model's IR compiled once, tokenized, padded, pooled and normalized by the server's own
EmbeddingsResource, with the same concurrency) and prints the server / in-process ratio.
Without --base-url, `--compare` or no URL at all starts `ovserve` itself and stops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

from serving.bench.stats import describe_ms

WORDS = (
    "the a model server request batch token vector search query answer document river mountain city "
    "quick brown fox jumps over lazy dog network latency memory cache engine open vino inference "
    "sentence meaning similar different green blue small large fast slow morning evening music book"
).split()


def build_batches(num_requests: int, batch_size: int, seed: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    return [[" ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 20))) for _ in range(batch_size)] for _ in range(num_requests)]


def resolve_model_dir(text: str) -> Path:
    path = Path(text)
    if path.is_dir():
        return path.resolve()
    if text == "minilm":
        from serving.dev_models import models

        return Path(models().build_minilm_model())
    raise SystemExit(f"ovserve bench-embeddings: no model folder {text!r} (give a folder or 'minilm')")


def summarize(latencies: list[float], errors: list[str], sentences: int, duration_s: float) -> dict[str, Any]:
    return {
        "requests": len(latencies) + len(errors),
        "succeeded": len(latencies),
        "failed": len(errors),
        "errors": errors[:5],
        "sentences": sentences,
        "duration_s": duration_s,
        "sentences_per_s": sentences / duration_s if duration_s > 0 else 0.0,
        "requests_per_s": len(latencies) / duration_s if duration_s > 0 else 0.0,
        "latency_ms": describe_ms(latencies),
    }


async def _run_concurrently(batches: list[list[str]], concurrency: int, one: Any) -> dict[str, Any]:
    """`one(batch)` for every batch, at most `concurrency` at once; it returns an error text or None."""
    latencies: list[float] = []
    errors: list[str] = []
    sentences = 0
    queue: asyncio.Queue[list[str]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)

    async def worker() -> None:
        nonlocal sentences
        while not queue.empty():
            batch = queue.get_nowait()
            start = time.perf_counter()
            try:
                error = await one(batch)
            except Exception as exc:  # noqa: BLE001 - a failed request is counted, not fatal
                error = f"{type(exc).__name__}: {exc}"
            if error is None:
                latencies.append(time.perf_counter() - start)
                sentences += len(batch)
            else:
                errors.append(error)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return summarize(latencies, errors, sentences, time.perf_counter() - start)


async def run_server(base_url: str, model: str, batches: list[list[str]], concurrency: int) -> dict[str, Any]:
    import aiohttp

    url = base_url.rstrip("/") + "/v3/embeddings"
    expected_dims: list[int] = []

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def one(batch: list[str]) -> str | None:
            async with session.post(url, json={"model": model, "input": batch}) as response:
                body = await response.read()
                if response.status != 200:
                    return f"HTTP {response.status}: {body[:200]!r}"
                data = json.loads(body)["data"]
                if len(data) != len(batch):
                    return f"{len(data)} embeddings for {len(batch)} inputs"
                expected_dims.append(len(data[0]["embedding"]))
                return None

        await one(batches[0])  # warm-up, not timed
        summary = await _run_concurrently(batches, concurrency, one)
    summary["dimensions"] = expected_dims[0] if expected_dims else 0
    return summary


async def run_in_process(model_dir: Path, batches: list[list[str]], concurrency: int) -> dict[str, Any]:
    from calculators.embeddings.resource import EmbeddingsOptions, create_embeddings_resource
    from graphs import ResourceContext

    options = EmbeddingsOptions(models_path=str(model_dir))
    resource = await create_embeddings_resource(options, ResourceContext(model_dir, "bench", "embeddings"))

    def embed(batch: list[str]) -> None:
        resource._embed(resource.fit(resource.tokenize(batch)))

    async def one(batch: list[str]) -> str | None:
        await asyncio.to_thread(embed, batch)
        return None

    try:
        await one(batches[0])  # warm-up, not timed
        summary = await _run_concurrently(batches, concurrency, one)
    finally:
        await resource.aclose()
    summary["dimensions"] = resource.dimensions
    return summary


def _table(title: str, s: dict[str, Any]) -> str:
    lat = s["latency_ms"]
    return (
        f"{title}: {s['succeeded']}/{s['requests']} ok, {s['sentences']} sentences in {s['duration_s']:.2f} s: "
        f"{s['sentences_per_s']:.1f} sentences/s, {s['requests_per_s']:.1f} req/s, "
        f"latency p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ovserve bench-embeddings", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", required=True, help="embeddings model folder (OpenVINO IR + tokenizer) or 'minilm'")
    parser.add_argument("--base-url", help="a running server (default: start ovserve on the model)")
    parser.add_argument("--model", default="bench", help="model name on the server (default: bench)")
    parser.add_argument("--compare", action="store_true", help="also run the batches in process and print the ratio")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--num-requests", type=int, default=100)
    parser.add_argument("--max-concurrency", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.batch_size < 1 or args.num_requests < 1 or args.max_concurrency < 1:
        raise SystemExit("ovserve bench-embeddings: --batch-size, --num-requests and --max-concurrency must be >= 1")
    model_dir = resolve_model_dir(args.model_dir)
    batches = build_batches(args.num_requests, args.batch_size, args.seed)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    config["model_dir"] = str(model_dir)
    result: dict[str, Any] = {"config": config}

    server = None
    base_url, model = args.base_url, args.model
    if base_url is None:
        from serving.bench.server_process import start_server

        server = start_server("--model_path", str(model_dir), "--model_name", "bench", "--task", "embeddings")
        base_url, model = server.base_url, "bench"
    try:
        result["server"] = asyncio.run(run_server(base_url, model, batches, args.max_concurrency))
    finally:
        if server is not None:
            server.stop()
    print(_table("server", result["server"]))
    if args.compare:
        result["in_process"] = asyncio.run(run_in_process(model_dir, batches, args.max_concurrency))
        print(_table("in-process", result["in_process"]))
        ceiling = result["in_process"]["sentences_per_s"]
        result["ratio_sentences_per_s"] = result["server"]["sentences_per_s"] / ceiling if ceiling else 0.0
        print(f"server / in-process sentences/s: {result['ratio_sentences_per_s']:.3f}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2, allow_nan=False, default=str) + "\n", encoding="utf-8")
    return 0 if result["server"]["failed"] == 0 else 1

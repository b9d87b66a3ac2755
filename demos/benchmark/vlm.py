"""The VLM bench (issue 18): requests/s of 1-image chats at concurrency 4, ovserve against the
engine in process, on the trained tiny VLM, same images and same prompts.

Workload: the tiny VLM's single-image conversations (tests/models/vlm_data.py VLM_CASES: a solid
colour, or a circle or square, each with the question before and after the image), in turn,
greedy, up to 16 tokens: each answer is the trained one ("red.", "circle.") ending at eos, and a
wrong answer is counted. Steps:

1. ovserve `--model_path <tiny VLM>` with config/vlm's scheduler settings (VLM_CB, prefix
   caching), on a free port. Each request is a unary `POST /v3/chat/completions` with the image
   as a PNG data URL (encoded once, before timing; the server decodes it per request).
2. The engine in this process: `ContinuousBatchingPipeline` on the same folder and settings; each
   request is `add_request(id, prompt, [image], config)` with the prompt the chat template renders
   (the text the server hands genai) and the image already decoded (uint8 NHWC `ov.Tensor`).

Both keep 4 requests in flight. After one warm-up round each, the two alternate for `--rounds`
rounds of `--requests` requests (the idle side costs nothing: the server's worker blocks when
idle), so both see the same machine; the ratio is taken per round (server / engine) and the
median reported, with the load average before each round. Alone:
    python demos/benchmark/vlm.py [--json bench-vlm.json] [--rounds 5] [--requests 256]
or `python demos/benchmark/suite.py --only vlm`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]

from serving.bench.server_process import Server, process_tree_cpu, start_server  # noqa: E402
from tests.models import VLM_CASES, VlmCase, build_tiny_vlm  # noqa: E402
from tests.models.vlm_train import render_vlm_prompt  # noqa: E402

CONCURRENCY = 4
MAX_TOKENS = 16
MODEL_NAME = "vlm"
# config/vlm/graph.pbtxt's engine settings, for the server and the in-process engine alike.
SCHEDULER = {"cache_size": 1, "max_num_seqs": 256, "max_num_batched_tokens": 2048, "enable_prefix_caching": True}
SERVER_FLAGS = ["--pipeline_type", "VLM_CB", *[f for k, v in SCHEDULER.items() for f in (f"--{k}", str(v).lower())]]


def one_image_cases() -> list[VlmCase]:
    return [case for case in VLM_CASES if len(case.images) == 1 and len(case.messages) == 1]


def png_data_url(image: Any) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@dataclass(frozen=True, slots=True)
class Round:
    side: str  # "server" or "engine"
    requests: int
    seconds: float
    wrong: int
    failed: int
    loadavg: float  # 1-minute load average just before the round
    # CPU seconds in the round: the server process and its engine worker (the server side), or
    # this whole process, the engine's threads included (the engine side: all in "engine")
    cpu_server_s: float
    cpu_engine_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def loadavg() -> float:
    return os.getloadavg()[0]


# --------------------------------------------------------------------------- the server


def request_bodies(cases: Sequence[VlmCase]) -> list[tuple[bytes, str]]:
    """Each case's request body (encoded once) and its expected answer."""
    bodies = []
    for case in cases:
        body = {"model": MODEL_NAME, "messages": case.openai_messages(png_data_url), "max_tokens": MAX_TOKENS, "temperature": 0}
        bodies.append((json.dumps(body).encode(), case.answer))
    return bodies


async def _server_round(base_url: str, bodies: Sequence[tuple[bytes, str]], count: int) -> tuple[float, int, int]:
    import aiohttp

    next_index = 0
    wrong = failed = 0
    url = base_url + "/v3/chat/completions"

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal next_index, wrong, failed
        while next_index < count:
            body, answer = bodies[next_index % len(bodies)]
            next_index += 1
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
                reply = await response.json()
            if response.status != 200:
                failed += 1
                if failed == 1:
                    print(f"vlm bench: the server answered {response.status}: {reply}", file=sys.stderr)
            elif reply["choices"][0]["message"]["content"] != answer:
                wrong += 1

    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY), timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(CONCURRENCY)))
        return time.perf_counter() - started, wrong, failed


def server_round(server: Server, bodies: Sequence[tuple[bytes, str]], count: int) -> Round:
    load = loadavg()
    before = process_tree_cpu(server.process.pid) or {"main": 0.0, "children": 0.0}
    seconds, wrong, failed = asyncio.run(_server_round(server.base_url, bodies, count))
    after = process_tree_cpu(server.process.pid) or {"main": 0.0, "children": 0.0}
    cpu = {key: after[key] - before[key] for key in after}
    return Round("server", count, seconds, wrong, failed, load, cpu["main"], cpu["children"])


# --------------------------------------------------------------------------- the engine


class InProcessEngine:
    """ContinuousBatchingPipeline on the VLM folder, `CONCURRENCY` requests in flight."""

    def __init__(self, model_dir: Path, cases: Sequence[VlmCase]) -> None:
        import openvino as ov
        import openvino_genai as ov_genai

        self._genai = ov_genai
        scheduler = ov_genai.SchedulerConfig()
        for key, value in SCHEDULER.items():
            setattr(scheduler, key, value)
        self.pipe = ov_genai.ContinuousBatchingPipeline(str(model_dir), scheduler, "CPU")
        self.tokenizer = self.pipe.get_tokenizer()
        # the prompts as the server renders them, the images as decoded arrays (1, H, W, 3)
        self.requests = [(render_vlm_prompt(c.messages), [ov.Tensor(c.images[0][None].copy())], c.answer) for c in cases]
        self._next_id = 0

    def _config(self) -> Any:
        config = self.pipe.get_config()
        config.max_new_tokens = MAX_TOKENS
        config.do_sample = False
        config.apply_chat_template = False  # the prompt is rendered already, as the server's is
        return config

    def run(self, count: int) -> Round:
        load = loadavg()
        cpu = time.process_time()
        config = self._config()
        status = self._genai.GenerationStatus
        active: dict[int, tuple[Any, str]] = {}  # handles kept alive while they run
        issued = wrong = failed = 0
        started = time.perf_counter()
        while issued < count or active:
            while issued < count and len(active) < CONCURRENCY:
                prompt, images, answer = self.requests[issued % len(self.requests)]
                active[self._next_id] = (self.pipe.add_request(self._next_id, prompt, images, config), answer)
                self._next_id += 1
                issued += 1
            self.pipe.step()
            for request_id, (handle, answer) in list(active.items()):
                state = handle.get_status()
                if state == status.RUNNING:
                    continue
                del active[request_id]
                if state != status.FINISHED:
                    failed += 1
                    continue
                (output,) = handle.read_all()
                if self.tokenizer.decode(output.generated_ids, skip_special_tokens=True) != answer:
                    wrong += 1
        seconds = time.perf_counter() - started
        return Round("engine", count, seconds, wrong, failed, load, 0.0, time.process_time() - cpu)


# --------------------------------------------------------------------------- the run


def run(json_path: Path | None, rounds: int = 5, requests: int = 256, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Both sides, alternating; the figures (also written to `json_path` when given)."""
    model_dir = build_tiny_vlm()
    cases = one_image_cases()
    bodies = request_bodies(cases)
    server = start_server("--model_path", str(model_dir), "--model_name", MODEL_NAME, *SERVER_FLAGS)
    try:
        engine = InProcessEngine(model_dir, cases)
        server_round(server, bodies, 2 * CONCURRENCY)  # warm-up: first shapes, connections
        engine.run(2 * CONCURRENCY)
        pairs: list[tuple[Round, Round]] = []
        for index in range(rounds):
            if index % 2 == 0:  # each side goes first in every other round
                first = server_round(server, bodies, requests)
                second = engine.run(requests)
            else:
                second = engine.run(requests)
                first = server_round(server, bodies, requests)
            pairs.append((first, second))
            log(
                f"round {index + 1}: server {first.rps:7.1f} req/s, engine {second.rps:7.1f} req/s, "
                f"ratio {first.rps / second.rps:.3f} (load {first.loadavg:.2f} / {second.loadavg:.2f}; "
                f"CPU ms/request: server process {first.cpu_server_s / requests * 1000:.2f} + its worker "
                f"{first.cpu_engine_s / requests * 1000:.2f}, engine in process {second.cpu_engine_s / requests * 1000:.2f}; "
                f"wrong {first.wrong}/{second.wrong}, failed {first.failed}/{second.failed})"
            )
    finally:
        server.stop()
    ratios = [s.rps / e.rps for s, e in pairs]
    result: dict[str, Any] = {
        "vlm_rps_ratio_c4": statistics.median(ratios),
        "vlm_rps_server_c4": statistics.median(s.rps for s, _ in pairs),
        "vlm_rps_engine_c4": statistics.median(e.rps for _, e in pairs),
        "vlm_rounds": [{"server": round_figures(s), "engine": round_figures(e), "ratio": s.rps / e.rps} for s, e in pairs],
        "vlm_workload": {
            "concurrency": CONCURRENCY,
            "requests_per_round": requests,
            "cases": len(cases),
            "max_tokens": MAX_TOKENS,
            "model": model_dir.name,
        },
        "vlm_wrong_or_failed": sum(r.wrong + r.failed for pair in pairs for r in pair),
    }
    log(
        f"VLM 1-image chats, c{CONCURRENCY}, median of {rounds} rounds: server {result['vlm_rps_server_c4']:.1f} req/s, "
        f"engine {result['vlm_rps_engine_c4']:.1f} req/s, server/engine {result['vlm_rps_ratio_c4']:.3f}"
    )
    if json_path is not None:
        json_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        log(f"wrote {json_path}")
    return result


def round_figures(r: Round) -> dict[str, float]:
    return {
        "rps": r.rps,
        "seconds": r.seconds,
        "wrong": r.wrong,
        "failed": r.failed,
        "loadavg": r.loadavg,
        "cpu_ms_per_request_server": r.cpu_server_s / r.requests * 1000,
        "cpu_ms_per_request_engine": r.cpu_engine_s / r.requests * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=ROOT / "bench-vlm.json")
    parser.add_argument("--rounds", type=int, default=5, help="server/engine round pairs [5]")
    parser.add_argument("--requests", type=int, default=256, help="requests per round [256]")
    args = parser.parse_args(argv)
    result = run(args.json, args.rounds, args.requests)
    return 1 if result["vlm_wrong_or_failed"] else 0


if __name__ == "__main__":
    sys.exit(main())

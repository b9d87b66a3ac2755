"""The text-to-speech bench (issue 22): per-request latency of speech through ovserve against
openvino-genai's Text2SpeechPipeline called in this process, on the toy SpeechT5
(tests/models/tts.py), same input, same voice.

Workload: four short inputs (2-11 characters: 15,360-61,440 samples of 16 kHz audio), in turn,
one request at a time (the pipeline runs one generation at a time per servable), one voice
(a seeded random speaker embedding, as tests/helpers/speech.py writes them), pcm (raw 16-bit).

1. ovserve `--model_path <the toy with a voices/ folder> --task text2speech` on a free port; each
   request is a `POST /v3/audio/speech` JSON body on one keep-alive connection: the server parses
   it, runs the graph and generate() in a thread, encodes the samples as 16-bit pcm
   (soundfile) and answers them whole.
2. The engine in this process: `Text2SpeechPipeline(folder, "CPU")` and `generate(text, voice)`,
   its float samples copied out (genai reuses the tensor's memory).

Both sides must give the same number of samples for each input (the server's pcm bytes / 2).
Timed in alternating rounds by paired_latency.py (median of the per-round medians; ratio server / engine). Alone:
    python demos/benchmark/speech.py [--json bench-speech.json] [--rounds 5] [--requests 32]
or `python demos/benchmark/suite.py --only speech`.
"""

from __future__ import annotations

import http.client
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]

import paired_latency  # noqa: E402

from serving.bench.server_process import start_server  # noqa: E402
from tests.helpers.speech import VOICES, embedding, folder_with_voices  # noqa: E402
from tests.models import build_tiny_tts  # noqa: E402

MODEL_NAME = "speech"
VOICE = "alloy"
INPUTS = ["hi", "hello", "hello you", "hello world"]


def server_round(conn: http.client.HTTPConnection, bodies: list[bytes], lengths: list[int], requests: int) -> list[float]:
    latencies = []
    for i in range(requests):
        started = time.perf_counter()
        conn.request("POST", "/v3/audio/speech", body=bodies[i % len(bodies)], headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        reply = response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 200 or len(reply) != 2 * lengths[i % len(lengths)]:
            raise RuntimeError(f"wrong answer from the server: {response.status}, {len(reply)} bytes: {reply[:200]!r}")
    return latencies


def engine_round(pipeline: Any, voice: Any, lengths: list[int], requests: int) -> list[float]:
    import numpy as np

    latencies = []
    for i in range(requests):
        started = time.perf_counter()
        samples = np.array(pipeline.generate(INPUTS[i % len(INPUTS)], voice).speeches[0].data).reshape(-1)  # a copy, as the server's
        latencies.append(time.perf_counter() - started)
        if samples.size != lengths[i % len(lengths)]:
            raise RuntimeError(f"the engine gave {samples.size} samples for {INPUTS[i % len(INPUTS)]!r}")
    return latencies


def run(json_path: Path | None, rounds: int = 5, requests: int = 32, log: Callable[[str], None] = print) -> dict[str, Any]:
    import numpy as np
    import openvino as ov
    import openvino_genai as ov_genai

    model_dir = build_tiny_tts()
    pipeline = ov_genai.Text2SpeechPipeline(str(model_dir), "CPU")
    voice = ov.Tensor(embedding(VOICES[VOICE]))
    lengths = [int(np.array(pipeline.generate(text, voice).speeches[0].data).size) for text in INPUTS]
    bodies = [json.dumps({"model": MODEL_NAME, "voice": VOICE, "input": text, "response_format": "pcm"}).encode() for text in INPUTS]
    with tempfile.TemporaryDirectory(prefix="bench-speech-") as tmp:
        folder = folder_with_voices(model_dir, Path(tmp) / "tts")  # voices/alloy.bin beside the model's files
        server = start_server("--model_path", str(folder), "--model_name", MODEL_NAME, "--task", "text2speech")
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        try:
            result: dict[str, Any] = paired_latency.measure(
                "speech",
                "speech latency (toy SpeechT5, c1, pcm)",
                lambda n: server_round(conn, bodies, lengths, n),
                lambda n: engine_round(pipeline, voice, lengths, n),
                rounds=rounds,
                requests=requests,
                warmup=8,
                log=log,
            )
        finally:
            conn.close()
            server.stop()
    result.update(speech_samples=lengths, rounds=rounds, requests_per_round=requests)
    paired_latency.write_json(result, json_path, log)
    return result


def main(argv: list[str] | None = None) -> int:
    return paired_latency.main(__doc__, run, ROOT / "bench-speech.json", 32, argv)


if __name__ == "__main__":
    raise SystemExit(main())

"""The speech-to-text bench (issue 22): per-request latency of a transcription through ovserve
against openvino-genai's WhisperPipeline called in this process, on the toy Whisper
(tests/models/whisper.py), same audio.

Workload: WHISPER_CASES' four utterances (0.4-1.6 s of 16 kHz audio), in turn, one request at a
time (the pipeline runs one generation at a time per servable), greedy, json format.

1. ovserve `--model_path <toy Whisper> --task speech2text` on a free port; each request is a
   `POST /v3/audio/transcriptions` multipart form with the case's 16-bit wav (built once, before
   timing) on one keep-alive connection: the server reads the form, decodes the wav
   (soundfile), runs the graph and generate() in a thread, and answers JSON.
2. The engine in this process: `WhisperPipeline(folder, "CPU", word_timestamps=True)` (as the
   stock graph builds it) and `generate(samples)` on the float samples the wav holds.

Timed in alternating rounds by paired_latency.py (median of the per-round medians; ratio server / engine). Alone:
    python demos/benchmark/audio.py [--json bench-audio.json] [--rounds 5] [--requests 64]
or `python demos/benchmark/suite.py --only audio`.
"""

from __future__ import annotations

import http.client
import io
import json
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]

import paired_latency  # noqa: E402

from serving.bench.server_process import start_server  # noqa: E402
from tests.models import WHISPER_CASES, build_tiny_whisper  # noqa: E402
from tests.models.whisper_data import SAMPLE_RATE  # noqa: E402

MODEL_NAME = "whisper"


def wav_bytes(samples: Any) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, samples, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def form(wav: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\n{MODEL_NAME}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="speech.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    )
    return head.encode() + wav + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def server_round(conn: http.client.HTTPConnection, forms: list[tuple[bytes, str]], texts: list[str], requests: int) -> list[float]:
    latencies = []
    for i in range(requests):
        body, content_type = forms[i % len(forms)]
        started = time.perf_counter()
        conn.request("POST", "/v3/audio/transcriptions", body=body, headers={"Content-Type": content_type})
        reply = conn.getresponse().read()
        latencies.append(time.perf_counter() - started)
        if json.loads(reply)["text"] != texts[i % len(texts)]:
            raise RuntimeError(f"wrong answer from the server: {reply!r}")
    return latencies


def engine_round(pipeline: Any, samples: list[Any], texts: list[str], requests: int) -> list[float]:
    latencies = []
    for i in range(requests):
        started = time.perf_counter()
        result = pipeline.generate(samples[i % len(samples)])
        latencies.append(time.perf_counter() - started)
        if result.texts[0].strip() != texts[i % len(texts)]:
            raise RuntimeError(f"wrong answer from the engine: {result.texts!r}")
    return latencies


def run(json_path: Path | None, rounds: int = 5, requests: int = 64, log: Callable[[str], None] = print) -> dict[str, Any]:
    import numpy as np
    import openvino_genai as ov_genai
    import soundfile

    model_dir = build_tiny_whisper()
    texts = [case.text.strip() for case in WHISPER_CASES]
    wavs = [wav_bytes(case.audio()) for case in WHISPER_CASES]
    forms = [form(wav) for wav in wavs]
    samples = [np.ascontiguousarray(soundfile.read(io.BytesIO(wav), dtype="float32")[0]) for wav in wavs]  # what the wav holds
    server = start_server("--model_path", str(model_dir), "--model_name", MODEL_NAME, "--task", "speech2text")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        pipeline = ov_genai.WhisperPipeline(str(model_dir), "CPU", word_timestamps=True)
        result: dict[str, Any] = paired_latency.measure(
            "audio",
            "transcription latency (toy Whisper, c1)",
            lambda n: server_round(conn, forms, texts, n),
            lambda n: engine_round(pipeline, samples, texts, n),
            rounds=rounds,
            requests=requests,
            warmup=8,
            log=log,
        )
    finally:
        conn.close()
        server.stop()
    result.update(rounds=rounds, requests_per_round=requests)
    paired_latency.write_json(result, json_path, log)
    return result


def main(argv: list[str] | None = None) -> int:
    return paired_latency.main(__doc__, run, ROOT / "bench-audio.json", 64, argv)


if __name__ == "__main__":
    raise SystemExit(main())

"""A client that hangs up stops its image generation or its transcription: the engine stops before
the end (the server's log says after how many steps or tokens), the servable is free at once,
and the next request is served right.

Each request is made long (a 64x64 image with 1,000 denoising steps, ~20 s on the toy; 600 s of
audio streamed, ~2 s on the toy Whisper, which streams once per 2 s window) so that the stop
lands well before the end. Each wait is a bounded poll on the server's own state (its
/debug/stats, its log), never a sleep: the bound guards against a hang only.
"""

from __future__ import annotations

import io
import json
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from tests.helpers.audio import speech_graph
from tests.helpers.http import get, post
from tests.helpers.image_gen import image_graph
from tests.helpers.servables import write_config
from tests.helpers.server import Server, start_server
from tests.models import WHISPER_CASES
from tests.models.whisper_data import SAMPLE_RATE

BOUND_S = 120
STEPS = 1000
WINDOWS = 300  # 2 s windows of "one two three"
T = TypeVar("T")


@pytest.fixture(scope="module")
def server(tiny_diffusion_dir: Path, tiny_whisper_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("media-disconnects")
    graphs = {
        "sd": image_graph(tiny_diffusion_dir, max_num_inference_steps=STEPS),
        "whisper": speech_graph(tiny_whisper_dir),
    }
    srv = start_server("--config_path", str(write_config(root, graphs)), "--trace", "header")
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


def wait_for(what: str, probe: Callable[[], T | None]) -> T:
    deadline = time.monotonic() + BOUND_S
    while (found := probe()) is None or found is False:
        assert time.monotonic() < deadline, f"no {what} within {BOUND_S} s"
        time.sleep(0.01)
    return found


def image_engine_busy(server: Server) -> bool:
    status, body = get(server, "/debug/stats")
    assert status == 200
    return bool(json.loads(body)["servables"]["sd"]["resources"]["pipes"]["busy"])


def logged(server: Server, pattern: str) -> Callable[[], re.Match[str] | None]:
    def probe() -> re.Match[str] | None:
        return next((m for line in list(server.output) if (m := re.search(pattern, line))), None)

    return probe


def send(server: Server, path: str, body: bytes, content_type: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=BOUND_S)
    head = f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    sock.sendall(head.encode() + body)
    return sock


def test_a_client_gone_stops_its_image_generation(server: Server) -> None:
    body = {"model": "sd", "prompt": "a photo of a red cat", "size": "64x64", "num_inference_steps": STEPS}
    sock = send(server, "/v3/images/generations", json.dumps(body).encode(), "application/json")
    wait_for("generation running", lambda: image_engine_busy(server))
    sock.close()
    stopped = wait_for("the stop in the log", logged(server, r"servable sd: generation cancelled, .* after (\d+) of (\d+) steps"))
    assert int(stopped.group(2)) == STEPS and 1 <= int(stopped.group(1)) < STEPS
    assert not image_engine_busy(server)  # released once stopped
    small = {"model": "sd", "prompt": "a tree", "size": "32x32", "num_inference_steps": 2}
    status, _, reply = post(server, "/v3/images/generations", small)
    assert status == 200 and len(json.loads(reply)["data"]) == 1


def long_audio_form(stream: bool) -> tuple[bytes, str]:
    import soundfile

    case = WHISPER_CASES[0]
    window = np.zeros(2 * SAMPLE_RATE, dtype=np.float32)
    window[: len(case.audio())] = case.audio()
    wav = io.BytesIO()
    soundfile.write(wav, np.tile(window, WINDOWS), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    boundary = uuid.uuid4().hex
    fields = {"model": "whisper", "stream": "true" if stream else "false"}
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="long.wav"\r\nContent-Type: audio/wav\r\n\r\n'
    parts.append(head.encode() + wav.getvalue() + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def trace_span(server: Server, trace_id: str, name: str) -> dict[str, Any]:
    status, body = get(server, f"/debug/traces/{trace_id}")
    assert status == 200
    return next(e["args"] for e in json.loads(body)["traceEvents"] if e.get("name") == name)  # type: ignore[no-any-return]


def test_a_client_gone_stops_its_streamed_transcription(server: Server) -> None:
    body, content_type = long_audio_form(stream=True)
    sock = send(server, "/v3/audio/transcriptions", body, content_type)
    received = b""
    while b"transcript.text.delta" not in received:  # the engine is generating
        chunk = sock.recv(65536)
        assert chunk, received[-500:]
        received += chunk
    sock.close()
    stopped = wait_for("the stop in the log", logged(server, r"servable whisper: transcription cancelled, .* after (\d+) tokens"))
    # the next request finds the engine free, and says how long the whole transcription is
    body, content_type = long_audio_form(stream=False)
    status, headers, reply = post(server, "/v3/audio/transcriptions", body, headers={"Content-Type": content_type, "X-Ovserve-Trace": "1"})
    assert status == 200 and json.loads(reply)["text"] == " ".join([WHISPER_CASES[0].text.strip()] * WINDOWS)
    whole = trace_span(server, headers["X-Ovserve-Trace-Id"], "generate")["tokens"]
    assert 1 <= int(stopped.group(1)) < whole

"""The speech-to-text end-to-end tests' pieces: the toy Whisper's cases encoded in each container
the server takes (with soundfile, at other rates and in stereo), the servables' graphs, and a
multipart form sent over raw HTTP."""

from __future__ import annotations

import http.client
import io
import json
import uuid
from pathlib import Path

import numpy as np

from tests.helpers.server import Server
from tests.models.whisper_data import SAMPLE_RATE, WhisperCase

# (file name, soundfile format, subtype, rate): the same audio in each container
CONTAINERS = {
    "wav": ("WAV", "PCM_16", SAMPLE_RATE),
    "flac": ("FLAC", "PCM_24", 44100),
    "ogg": ("OGG", "VORBIS", 22050),
    "mp3": ("MP3", "MPEG_LAYER_III", 24000),
}


def encode(case: WhisperCase, container: str = "wav", stereo: bool = False) -> bytes:
    import soundfile
    import soxr

    fmt, subtype, rate = CONTAINERS[container]
    audio = case.audio()
    if rate != SAMPLE_RATE:
        audio = soxr.resample(audio, SAMPLE_RATE, rate)
    if stereo:
        audio = np.stack([audio, audio], axis=1)
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


# OVMS's speech-to-text graph before streaming (its docs' example and export tools' older template):
# no LOOPBACK, no word timestamps.
OVMS_PLAIN_GRAPH = """input_stream: "HTTP_REQUEST_PAYLOAD:input"
output_stream: "HTTP_RESPONSE_PAYLOAD:output"
node {
  name: "S2tExecutor"
  input_side_packet: "STT_NODE_RESOURCES:s2t_servable"
  calculator: "S2tCalculator"
  input_stream: "HTTP_REQUEST_PAYLOAD:input"
  output_stream: "HTTP_RESPONSE_PAYLOAD:output"
  node_options: {
    [type.googleapis.com / mediapipe.S2tCalculatorOptions]: {
      models_path: "./",
      plugin_config: '{ "NUM_STREAMS": "1" }',
      target_device: "CPU"
    }
  }
}
"""


def speech_graph(model_dir: Path, plain: bool = False) -> str:
    """The stock graph (OVMS's pull graph, word timestamps on) on `model_dir`, or OVMS's plain one."""
    from importlib import resources

    graph = OVMS_PLAIN_GRAPH if plain else resources.files("graphs.stock").joinpath("speech_to_text.pbtxt").read_text(encoding="utf-8")
    return graph.replace('models_path: "./"', f"models_path: {json.dumps(str(model_dir))}")


def post_form(
    server: Server,
    path: str,
    fields: dict[str, str],
    file: tuple[str, bytes] | None,
    content_type: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """A multipart/form-data POST built by hand (the hostile cases need malformed ones too)."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode() for name, value in fields.items()]
    if file is not None:
        name, data = file
        disposition = f'Content-Disposition: form-data; name="file"; filename="{name}"'
        head = f"--{boundary}\r\n{disposition}\r\nContent-Type: application/octet-stream\r\n\r\n"
        parts.append(head.encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        conn.request(
            "POST",
            path,
            body=body,
            headers={"Content-Type": content_type or f"multipart/form-data; boundary={boundary}", **(headers or {})},
        )
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()

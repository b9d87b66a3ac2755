"""The image bench (issue 22): per-request latency of generations and edits through ovserve
against openvino-genai's pipelines called in this process, on the toy Stable Diffusion
(tests/models/diffusion.py: random weights), same inputs, steps and seed.

Workloads, one request at a time (the servable runs one generation at a time), 32x32, 4
denoising steps, rng_seed 7:

- generation: `POST /v3/images/generations` JSON for "a photo of a red cat", against
  `Text2ImagePipeline(folder, "CPU").generate(prompt, width=, height=, ...)`;
- edit: `POST /v3/images/edits` multipart with docs/images/edit-input.png (32x32), prompt
  "a photo of a green tree", strength 0.7 (genai runs int(4 * 0.7) = 2 steps), against
  `Image2ImagePipeline(folder, "CPU").generate(prompt, image_tensor, strength=, ...)`;
- inpaint: the same form plus docs/images/edit-mask.png (OpenAI's mask: transparent = redraw),
  against `InpaintingPipeline(folder, "CPU").generate(prompt, image_tensor, mask_tensor, ...)`.

1. ovserve `--model_path <toy SD> --task image_generation` on a free port; each workload's body
   is built once and sent on one keep-alive connection: the server decodes the upload, runs the
   graph and generate() in the resource's thread, encodes the PNG, answers base64 JSON.
2. The engine in this process: the server's own steps, called directly. For edits the upload is
   decoded by the same functions (calculators/image/pixels.py: decode_upload, decode_mask) into
   the same ov.Tensor; generate() gets the server's arguments (num_images_per_prompt=1,
   num_inference_steps, width and height of the image, rng_seed, strength, a step callback
   that never stops); the result is encoded by the same encode_png. Both sides must make the
   same PNG bytes (checked on every request). The server's pipelines share compiled models (made from its InpaintingPipeline);
   here each is built from the folder, as a user would.

Each workload timed in alternating rounds by paired_latency.py (median of the per-round medians;
ratio server / engine; keys images_, images_edit_, images_inpaint_ latency_ms_server /
latency_ms_engine / latency_ratio). Alone:
    python demos/benchmark/images.py [--json bench-images.json] [--rounds 5] [--requests 16]
or `python demos/benchmark/suite.py --only images`.
"""

from __future__ import annotations

import base64
import http.client
import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]

import paired_latency  # noqa: E402

from calculators.image.pixels import decode_mask, decode_upload, encode_png  # noqa: E402
from serving.bench.server_process import start_server  # noqa: E402
from tests.models import build_tiny_diffusion  # noqa: E402

MODEL_NAME = "sd"
PROMPT, EDIT_PROMPT = "a photo of a red cat", "a photo of a green tree"
SIDE, STEPS, SEED, STRENGTH = 32, 4, 7, 0.7
INPUT_PNG, MASK_PNG = ROOT / "docs/images/edit-input.png", ROOT / "docs/images/edit-mask.png"
MAX_PIXELS = 1 << 24  # far above 32x32: the server's limit never binds here


@dataclass(frozen=True)
class Workload:
    """One kind of request: the HTTP body (built once) and the same job in process."""

    name: str  # the result keys' prefix
    label: str
    path: str
    body: bytes
    content_type: str
    engine: Callable[[], Any]  # one generate() in process, its inputs decoded as the server does

    def engine_png(self) -> bytes:
        import numpy as np

        return encode_png(np.ascontiguousarray(np.asarray(self.engine().data)[0]))


def multipart(fields: dict[str, str], files: dict[str, bytes]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]
    for name, data in files.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.png"\r\nContent-Type: image/png\r\n\r\n'
        parts.append(head.encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def no_stop(step: int, num_steps: int, latent: Any) -> bool:
    return False


def workloads(model_dir: Path) -> list[Workload]:
    import openvino as ov
    import openvino_genai as ov_genai

    text2image = ov_genai.Text2ImagePipeline(str(model_dir), "CPU")
    image2image = ov_genai.Image2ImagePipeline(str(model_dir), "CPU")
    inpainting = ov_genai.InpaintingPipeline(str(model_dir), "CPU")
    picture, mask = INPUT_PNG.read_bytes(), MASK_PNG.read_bytes()
    # The server passes a step callback (to stop a cancelled job); so does this side: in one
    # probe at load 7 on 2 cores, generate() without it took 30 ms, with it 9 ms.
    config = {"num_images_per_prompt": 1, "num_inference_steps": STEPS, "rng_seed": SEED, "callback": no_stop}

    def generate() -> Any:
        return text2image.generate(PROMPT, width=SIDE, height=SIDE, **config)

    def edit(with_mask: bool) -> Any:
        pixels = decode_upload(picture, MAX_PIXELS)
        height, width = pixels.shape[:2]
        kwargs = {**config, "width": width, "height": height, "strength": STRENGTH}
        if not with_mask:
            return image2image.generate(EDIT_PROMPT, ov.Tensor(pixels[None]), **kwargs)
        plane = decode_mask(mask, MAX_PIXELS, (width, height))
        return inpainting.generate(EDIT_PROMPT, ov.Tensor(pixels[None]), ov.Tensor(plane[None]), **kwargs)

    body = {"model": MODEL_NAME, "prompt": PROMPT, "size": f"{SIDE}x{SIDE}", "num_inference_steps": STEPS, "rng_seed": SEED}
    fields = {"model": MODEL_NAME, "prompt": EDIT_PROMPT, "strength": str(STRENGTH)}
    fields |= {"num_inference_steps": str(STEPS), "rng_seed": str(SEED)}
    edit_body, edit_type = multipart(fields, {"image": picture})
    inpaint_body, inpaint_type = multipart(fields, {"image": picture, "mask": mask})
    return [
        Workload("images", "generation", "/v3/images/generations", json.dumps(body).encode(), "application/json", generate),
        Workload("images_edit", "edit", "/v3/images/edits", edit_body, edit_type, lambda: edit(False)),
        Workload("images_inpaint", "inpaint", "/v3/images/edits", inpaint_body, inpaint_type, lambda: edit(True)),
    ]


def server_round(conn: http.client.HTTPConnection, work: Workload, requests: int, expected: bytes) -> list[float]:
    latencies = []
    for _ in range(requests):
        started = time.perf_counter()
        conn.request("POST", work.path, body=work.body, headers={"Content-Type": work.content_type})
        reply = conn.getresponse().read()
        latencies.append(time.perf_counter() - started)
        if base64.b64decode(json.loads(reply)["data"][0]["b64_json"]) != expected:
            raise RuntimeError(f"{work.label}: the server's image differs from the engine's: {reply[:200]!r}")
    return latencies


def engine_round(work: Workload, requests: int, expected: bytes) -> list[float]:
    latencies = []
    for _ in range(requests):
        started = time.perf_counter()
        png = work.engine_png()
        latencies.append(time.perf_counter() - started)
        if png != expected:
            raise RuntimeError(f"{work.label}: the engine's image changed between runs")
    return latencies


def measure(conn: http.client.HTTPConnection, work: Workload, rounds: int, requests: int, log: Callable[[str], None]) -> dict[str, float]:
    expected = work.engine_png()
    return paired_latency.measure(
        work.name,
        f"image {work.label} latency (toy SD, {SIDE}x{SIDE}, {STEPS} steps, c1)",
        lambda n: server_round(conn, work, n, expected),
        lambda n: engine_round(work, n, expected),
        rounds=rounds,
        requests=requests,
        warmup=4,
        log=log,
        label=f"{work.label} ",
    )


def run(json_path: Path | None, rounds: int = 5, requests: int = 16, log: Callable[[str], None] = print) -> dict[str, Any]:
    model_dir = build_tiny_diffusion()
    server = start_server("--model_path", str(model_dir), "--model_name", MODEL_NAME, "--task", "image_generation")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
    result: dict[str, Any] = {}
    try:
        for work in workloads(model_dir):
            result.update(measure(conn, work, rounds, requests, log))
    finally:
        conn.close()
        server.stop()
    result.update(rounds=rounds, requests_per_round=requests)
    paired_latency.write_json(result, json_path, log)
    return result


def main(argv: list[str] | None = None) -> int:
    return paired_latency.main(__doc__, run, ROOT / "bench-images.json", 16, argv)


if __name__ == "__main__":
    raise SystemExit(main())

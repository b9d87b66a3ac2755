"""Servables and uploads of the image end-to-end tests: the stock image generation graph on the
toy Stable Diffusion (tests/models/diffusion.py) with small limits, OVMS's own graph text beside
the model files, PNGs and OpenAI-style masks."""

from __future__ import annotations

import base64
import io
import json
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

#: Small limits so the hostile tests reach each one cheaply.
LIMITS = {"max_resolution": "128x128", "max_num_images_per_prompt": 3, "default_num_inference_steps": 2, "max_num_inference_steps": 8}

# OVMS's graph as its `--task image_generation` pull writes it (models_path "./": the files sit beside it).
OVMS_IMAGE_GRAPH = """input_stream: "HTTP_REQUEST_PAYLOAD:input"
output_stream: "HTTP_RESPONSE_PAYLOAD:output"

node: {
  name: "ImageGenExecutor"
  calculator: "ImageGenCalculator"
  input_stream: "HTTP_REQUEST_PAYLOAD:input"
  input_side_packet: "IMAGE_GEN_NODE_RESOURCES:pipes"
  output_stream: "HTTP_RESPONSE_PAYLOAD:output"
  node_options: {
    [type.googleapis.com / mediapipe.ImageGenCalculatorOptions]: {
      models_path: "./",
      device: "CPU",
      default_num_inference_steps: 2,
    }
  }
}
"""


def image_graph(model_dir: Path, **options: object) -> str:
    """graphs/stock/image_generation.pbtxt on `model_dir` with LIMITS and `options` set."""
    text = resources.files("graphs.stock").joinpath("image_generation.pbtxt").read_text(encoding="utf-8")
    lines = [f"models_path: {json.dumps(str(model_dir))}"]
    lines += [f"{key}: {json.dumps(value)}" for key, value in {**LIMITS, **options}.items()]
    return text.replace('models_path: "./"', "\n      ".join(lines))


def ovms_folder(root: Path, model_dir: Path) -> Path:
    """A servable folder as OVMS users have it: OVMS's graph.pbtxt beside the model's files (linked)."""
    root.mkdir(parents=True)
    for entry in model_dir.iterdir():
        (root / entry.name).symlink_to(entry)
    (root / "graph.pbtxt").write_text(OVMS_IMAGE_GRAPH)
    return root


def png(width: int = 64, height: int = 64, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def openai_mask(width: int = 64, height: int = 64) -> bytes:
    """An OpenAI mask: opaque, with a transparent left half (the part to redraw)."""
    rgba = np.zeros((height, width, 4), dtype=np.uint8)
    rgba[:, :, 3] = 255
    rgba[:, : width // 2, 3] = 0
    buffer = io.BytesIO()
    Image.fromarray(rgba).save(buffer, format="PNG")
    return buffer.getvalue()


def decoded(b64: str | None) -> tuple[bytes, tuple[int, int]]:
    """An answer's PNG bytes and its (width, height)."""
    assert b64 is not None
    data = base64.b64decode(b64)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        return data, image.size

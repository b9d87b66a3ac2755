"""The image engine: genai's pipelines for one model folder, and one job run to PNG bytes.

Inpainting, image-to-image and text-to-image share one set of compiled models (genai builds the
other two from the inpainting pipeline). A model that has no inpainting or image-to-image
pipeline (genai refuses to build it) serves what it has; the calculator says which are missing.
Everything here blocks: the resource runs it off the event loop (calculators/image/resource.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from calculators.image.options import ImageGenOptions
from calculators.image.pixels import encode_png

# genai calls back after each denoising step; True stops the generation.
StepCallback = Callable[[int, int, Any], bool]


@dataclass
class Pipelines:
    text2image: Any
    image2image: Any = None
    inpainting: Any = None
    multiple_of: int = 8  # the VAE's scale: image sides are multiples of it
    default_size: tuple[int, int] = (512, 512)  # (width, height) the model makes when not told
    text_encoders: int = 1  # prompt_2 needs a second text encoder (SDXL, SD3, Flux), prompt_3 a third (SD3)

    def close(self) -> None:
        self.text2image = self.image2image = self.inpainting = None


def _vae_scale(folder: Path) -> int:
    config = folder / "vae_decoder" / "config.json"
    try:
        channels = json.loads(config.read_text(encoding="utf-8")).get("block_out_channels", [0, 0, 0, 0])
    except (OSError, ValueError):
        return 8
    return 2 ** max(len(channels) - 1, 0)


def load_pipelines(folder: Path, options: ImageGenOptions, properties: dict[str, Any]) -> Pipelines:
    """Load and compile the folder's pipelines (blocking; seconds to minutes on a real model)."""
    import openvino_genai as ov_genai

    static = options.static_size
    count = options.num_images_per_prompt or 1

    def build(kind: Any) -> Any:
        if static is None:
            return kind(str(folder), options.device, **properties)
        pipe = kind(str(folder))
        guidance = options.guidance_scale if options.guidance_scale is not None else pipe.get_generation_config().guidance_scale
        pipe.reshape(count, static[1], static[0], guidance)
        pipe.compile(options.device, **properties)
        return pipe

    # One set of compiled models; the other pipelines are made from the widest one genai builds.
    inpainting = image2image = None
    try:
        inpainting = build(ov_genai.InpaintingPipeline)
        image2image, text2image = ov_genai.Image2ImagePipeline(inpainting), ov_genai.Text2ImagePipeline(inpainting)
    except RuntimeError:
        try:
            image2image = build(ov_genai.Image2ImagePipeline)
            text2image = ov_genai.Text2ImagePipeline(image2image)
        except RuntimeError:
            text2image = build(ov_genai.Text2ImagePipeline)
    config = text2image.get_generation_config()
    scale = _vae_scale(folder)
    default = (config.width, config.height) if config.width > 0 and config.height > 0 else _unet_default(folder, scale)
    encoders = sum((folder / name).is_dir() for name in ("text_encoder", "text_encoder_2", "text_encoder_3"))
    return Pipelines(text2image, image2image, inpainting, scale, default, max(encoders, 1))


def _unet_default(folder: Path, scale: int) -> tuple[int, int]:
    try:
        sample = json.loads((folder / "unet" / "config.json").read_text(encoding="utf-8")).get("sample_size", 64)
    except (OSError, ValueError):
        sample = 64
    side = int(sample[0] if isinstance(sample, list) else sample) * scale
    return side, side


@dataclass
class Outcome:
    """What one job produced: PNG files, or nothing when it was stopped."""

    images: list[bytes]
    size: tuple[int, int]  # (width, height)
    engine_seconds: float
    step_seconds: list[float] = field(default_factory=list)
    stopped: bool = False


def run_job(
    pipelines: Pipelines,
    prompt: str,
    config: dict[str, Any],
    image: np.ndarray | None,
    mask: np.ndarray | None,
    should_stop: Callable[[], bool],
) -> Outcome:
    """Generate (text-to-image, image-to-image when `image`, inpainting when also `mask`) and
    encode each image as PNG. `should_stop` is asked after every denoising step."""
    import openvino as ov

    steps: list[float] = []
    last = time.perf_counter()

    def on_step(step: int, num_steps: int, latent: Any) -> bool:
        nonlocal last
        now = time.perf_counter()
        steps.append(now - last)
        last = now
        return should_stop()

    started = last
    kwargs = {**config, "callback": on_step}
    if image is None:
        tensor = pipelines.text2image.generate(prompt, **kwargs)
    elif mask is None:
        tensor = pipelines.image2image.generate(prompt, ov.Tensor(image[None]), **kwargs)
    else:
        tensor = pipelines.inpainting.generate(prompt, ov.Tensor(image[None]), ov.Tensor(mask[None]), **kwargs)
    engine_seconds = time.perf_counter() - started
    if should_stop():
        return Outcome([], (0, 0), engine_seconds, steps, stopped=True)
    batch = np.asarray(tensor.data)
    pngs = [encode_png(np.ascontiguousarray(picture)) for picture in batch]
    return Outcome(pngs, (int(batch.shape[2]), int(batch.shape[1])), engine_seconds, steps)

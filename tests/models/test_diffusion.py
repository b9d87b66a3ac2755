"""The toy Stable Diffusion (tests/models/diffusion.py): its tokenizer, and what openvino-genai's
image pipelines do with it (each fact of diffusion.py's docstring but the SIGFPE, which would
kill the test process)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import openvino_genai
import pytest

from tests.models import build_tiny_diffusion, tiny_diffusion_recipe
from tests.models.__main__ import BUILDERS
from tests.models.common import recipe_hash
from tests.models.diffusion import DIFFUSION_FILES, IMAGE_SIDE, PROMPT_WORDS, clip_tokenizer, write_clip_tokenizer

# --------------------------------------------------------------------------- data (fast)


def test_registered_and_recipe_is_stable() -> None:
    assert BUILDERS["tiny-diffusion"] is build_tiny_diffusion
    assert recipe_hash(tiny_diffusion_recipe()) == recipe_hash(tiny_diffusion_recipe())


def test_clip_tokenizer_has_the_prompt_words_whole(tmp_path: Path) -> None:
    write_clip_tokenizer(tmp_path, PROMPT_WORDS)
    tok = clip_tokenizer(tmp_path)
    assert tok.tokenize("a red cat") == ["a</w>", "red</w>", "cat</w>"]
    assert tok("a red cat").input_ids[0] == tok.bos_token_id and tok("a red cat").input_ids[-1] == tok.eos_token_id


# --------------------------------------------------------------------------- openvino-genai (e2e)


@pytest.fixture(scope="module")
def t2i(tiny_diffusion_dir: Path) -> openvino_genai.Text2ImagePipeline:
    return openvino_genai.Text2ImagePipeline(str(tiny_diffusion_dir), "CPU")


def pixels(image: Any) -> np.ndarray:
    return np.array(image.data)


def test_folder_has_what_genai_reads(tiny_diffusion_dir: Path) -> None:
    for name in DIFFUSION_FILES:
        assert (tiny_diffusion_dir / name).is_file(), name
    assert json.loads((tiny_diffusion_dir / "model_index.json").read_text())["_class_name"] == "StableDiffusionPipeline"


def test_text_to_image_shape_and_seed(t2i: openvino_genai.Text2ImagePipeline) -> None:
    image = t2i.generate("a red cat", num_inference_steps=3, rng_seed=42)
    assert list(image.shape) == [1, IMAGE_SIDE, IMAGE_SIDE, 3] and image.element_type == ov.Type.u8
    first = pixels(image)  # a copy: the next generate overwrites the returned tensor's memory
    same = pixels(t2i.generate("a red cat", num_inference_steps=3, rng_seed=42))
    other_seed = pixels(t2i.generate("a red cat", num_inference_steps=3, rng_seed=43))
    other_prompt = pixels(t2i.generate("a blue dog", num_inference_steps=3, rng_seed=42))
    assert np.array_equal(first, same) and np.array_equal(pixels(image), other_prompt)  # aliased
    assert not np.array_equal(first, other_seed) and not np.array_equal(first, other_prompt)
    by_generator = t2i.generate("a red cat", num_inference_steps=3, generator=openvino_genai.CppStdGenerator(42))
    assert np.array_equal(first, pixels(by_generator))


def test_sizes_counts_and_refusals(t2i: openvino_genai.Text2ImagePipeline) -> None:
    images = t2i.generate("a tree", width=32, height=96, num_inference_steps=1, num_images_per_prompt=2, rng_seed=1)
    assert list(images.shape) == [2, 96, 32, 3]
    negative = t2i.generate("a tree", negative_prompt="a house", guidance_scale=3.0, num_inference_steps=1, rng_seed=1)
    assert list(negative.shape) == [1, IMAGE_SIDE, IMAGE_SIDE, 3]
    with pytest.raises(RuntimeError, match="divisible by 2"):
        t2i.generate("a tree", width=31, num_inference_steps=1)
    with pytest.raises(RuntimeError, match="Strength"):
        t2i.generate("a tree", strength=0.5, num_inference_steps=1)
    config = t2i.get_generation_config()
    assert (config.width, config.height, config.num_inference_steps, config.guidance_scale) == (IMAGE_SIDE, IMAGE_SIDE, 50, 7.5)


def test_callback_counts_steps_and_cancels(t2i: openvino_genai.Text2ImagePipeline) -> None:
    steps: list[tuple[int, int]] = []

    def progress(step: int, num_steps: int, latent: Any) -> bool:
        steps.append((step, num_steps))
        return False  # go on

    t2i.generate("a cat", num_inference_steps=3, callback=progress)
    assert steps == [(0, 3), (1, 3), (2, 3)]
    cancelled = t2i.generate("a cat", num_inference_steps=3, callback=lambda step, num_steps, latent: True)
    assert list(cancelled.shape) == []


def test_image_to_image_and_inpainting_load_the_same_folder(tiny_diffusion_dir: Path) -> None:
    source = ov.Tensor(np.random.default_rng(0).integers(0, 256, (1, 32, 48, 3), dtype=np.uint8))
    i2i = openvino_genai.Image2ImagePipeline(str(tiny_diffusion_dir), "CPU")
    first = pixels(i2i.generate("a cat", source, strength=0.5, num_inference_steps=4, rng_seed=1))
    assert first.shape == (1, 32, 48, 3)  # the source's size
    assert np.array_equal(first, pixels(i2i.generate("a cat", source, strength=0.5, num_inference_steps=4, rng_seed=1)))
    mask = np.zeros((1, 32, 48, 3), np.uint8)
    mask[:, 8:24, 8:40] = 255
    inpainting = openvino_genai.InpaintingPipeline(str(tiny_diffusion_dir), "CPU")
    # inpainting generates at the configured size (64x64), not the image's, unless told
    assert list(inpainting.generate("a cat", source, ov.Tensor(mask), num_inference_steps=1).shape) == [1, IMAGE_SIDE, IMAGE_SIDE, 3]
    sized = inpainting.generate("a cat", source, ov.Tensor(mask[..., :1].copy()), width=48, height=32, num_inference_steps=1)
    assert list(sized.shape) == [1, 32, 48, 3]  # a one-channel mask works too

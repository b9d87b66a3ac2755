"""The tiny Stable Diffusion: a TOY with seeded RANDOM weights (diffusers ``UNet2DConditionModel``,
``AutoencoderKL`` and transformers' ``CLIPTextModel`` with tiny configs, a CLIP tokenizer written
here, a DDIM scheduler) saved in diffusers' layout and exported with optimum-intel
(``text-to-image``). Its images are noise-like: it checks plumbing, shapes and determinism under
a seed, not image quality.

What openvino-genai 2026.4 does with it (checked by test_diffusion.py):

* ``Text2ImagePipeline(folder, "CPU")``, ``Image2ImagePipeline`` and ``InpaintingPipeline`` all
  load the same folder (``model_index.json``, ``scheduler/scheduler_config.json``,
  ``text_encoder/``, ``tokenizer/openvino_tokenizer.xml``, ``unet/``, ``vae_decoder/``, ``vae_encoder/``).
* ``generate(prompt, width=, height=, num_inference_steps=, rng_seed= (or generator=CppStdGenerator(seed),
  the same images), num_images_per_prompt=, guidance_scale=, negative_prompt=, max_sequence_length=,
  callback=)`` returns an ``ov.Tensor`` uint8 (n, H, W, 3); the default size is the UNet's
  sample_size × the VAE's scale factor (2 here: 64×64; defaults 50 steps, guidance 7.5). The same
  seed gives the same pixels. Any size that is a multiple of the scale factor works (else
  RuntimeError "must be divisible"); ``num_images_per_prompt=0`` returns (0, H, W, 3); an empty
  prompt is accepted; ``prompt_2`` and ``strength`` != 1 are refused (RuntimeError).
* ``num_inference_steps=0`` KILLS THE PROCESS (SIGFPE, exit 136): a server must refuse it first.
* ``callback(step, num_steps, latent) -> bool`` runs once per step (step 0..n-1); returning True
  cancels: generate then returns an empty tensor (shape []).
* ``Image2ImagePipeline.generate(prompt, image, strength=...)`` takes uint8 (1, H, W, 3) of any
  size that is a multiple of the scale factor and returns that size; ``InpaintingPipeline.generate(
  prompt, image, mask_image, ...)`` (mask uint8 (1, H, W, 3) or (1, H, W, 1), 255 = repaint) works on
  this non-inpainting UNet (4 input channels) too, but generates at the configured size (64×64),
  not the image's, unless given width/height; pixels outside the mask are not kept exactly.
* The returned tensor's memory is the pipeline's: the next generate overwrites it. Copy first.
* ``set_scheduler(Scheduler.from_config(path, Scheduler.Type.EULER_DISCRETE))`` swaps the scheduler.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.models.common import RECIPE_VERSION, cached_build, default_cache_root, package_versions, quiet_build

logger = logging.getLogger("tests.models.diffusion")

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
#: Words the CLIP tokenizer has whole (anything else falls back to characters).
PROMPT_WORDS = ("a", "red", "green", "blue", "cat", "dog", "house", "tree", "photo", "of")
#: The image side genai generates by default (UNet sample_size × VAE scale factor).
IMAGE_SIDE = 64


def tiny_diffusion_recipe() -> dict[str, Any]:
    """Everything that decides what :func:`build_tiny_diffusion` produces."""
    return {
        "recipe_version": RECIPE_VERSION,
        "kind": "tiny-diffusion",
        "seed": 0,
        "unet": {
            "sample_size": 32,
            "in_channels": 4,
            "out_channels": 4,
            "block_out_channels": [8, 16],
            "layers_per_block": 1,
            "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
            "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
            "cross_attention_dim": 16,
            "attention_head_dim": 2,
            "norm_num_groups": 4,
        },
        "vae": {
            "in_channels": 3,
            "out_channels": 3,
            "block_out_channels": [8, 16],
            "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"],
            "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"],
            "latent_channels": 4,
            "layers_per_block": 1,
            "norm_num_groups": 4,
            "sample_size": IMAGE_SIDE,
        },
        "text_encoder": {
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
            "projection_dim": 16,
        },
        "scheduler": {
            "class": "DDIMScheduler",
            "beta_start": 0.00085,
            "beta_end": 0.012,
            "beta_schedule": "scaled_linear",
            "num_train_timesteps": 1000,
            "clip_sample": False,
            "set_alpha_to_one": False,
            "steps_offset": 1,
            "prediction_type": "epsilon",
        },
        "words": PROMPT_WORDS,
        "weight_format": "fp32",
        "versions": {**package_versions(), "diffusers": _diffusers_version()},
    }


def _diffusers_version() -> str:
    from tests.models.common import package_version

    return package_version("diffusers")


def build_tiny_diffusion_hf(cache_root: Path | None = None) -> Path:
    """The toy's diffusers folder (model_index.json, random weights, CLIP tokenizer) that
    :func:`build_tiny_diffusion` exports: a ``--source_model`` for the pull tests (cached apart)."""
    recipe = tiny_diffusion_recipe()
    return cached_build(cache_root or default_cache_root(), "tiny-diffusion-hf", recipe, lambda out: _build_hf(out, recipe))


def build_tiny_diffusion(cache_root: Path | None = None) -> Path:
    """The toy Stable Diffusion folder (random weights) that genai's image pipelines load."""
    recipe = tiny_diffusion_recipe()
    root = cache_root or default_cache_root()
    return cached_build(root, "tiny-diffusion", recipe, lambda out: _build(out, build_tiny_diffusion_hf(root)))


def write_clip_tokenizer(folder: Path, words: tuple[str, ...]) -> None:
    """vocab.json and merges.txt in CLIP's layout: the 256 byte symbols, the same with ``</w>``,
    the merges spelling each of ``words``, then the two special tokens."""
    from tokenizers import pre_tokenizers

    symbols = sorted(pre_tokenizers.ByteLevel.alphabet())  # the 256 printable stand-ins for bytes
    vocab = symbols + [s + "</w>" for s in symbols]
    merges: list[str] = []
    for word in words:
        parts = [*word[:-1], word[-1] + "</w>"]
        while len(parts) > 1:
            merged = parts[0] + parts[1]
            pair = f"{parts[0]} {parts[1]}"
            if pair not in merges:
                merges.append(pair)
                vocab.append(merged)
            parts = [merged, *parts[2:]]
    vocab += [BOS, EOS]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")


def clip_tokenizer(folder: Path) -> Any:
    """transformers' CLIPTokenizer from :func:`write_clip_tokenizer`'s files (its file loading is
    deprecated in tokenizers: the warning is silenced, pytest runs with -W error)."""
    import warnings

    from transformers import CLIPTokenizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)


def _build_hf(out: Path, recipe: dict[str, Any]) -> None:
    import torch

    with quiet_build(), tempfile.TemporaryDirectory() as tok_src:
        from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
        from transformers import CLIPTextConfig, CLIPTextModel

        t0 = time.monotonic()
        write_clip_tokenizer(Path(tok_src), recipe["words"])
        tokenizer = clip_tokenizer(Path(tok_src))
        torch.manual_seed(recipe["seed"])
        text_kwargs: dict[str, Any] = {
            **recipe["text_encoder"],
            "vocab_size": len(tokenizer),
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        }
        text_encoder = CLIPTextModel(CLIPTextConfig(**text_kwargs))
        unet = UNet2DConditionModel(**recipe["unet"])
        vae = AutoencoderKL(**recipe["vae"])
        scheduler_spec = {k: v for k, v in recipe["scheduler"].items() if k != "class"}
        pipe = StableDiffusionPipeline(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            unet=unet,
            scheduler=DDIMScheduler(**scheduler_spec),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        pipe.save_pretrained(out, safe_serialization=True)  # type: ignore[attr-defined]
        logger.info("tiny diffusion: made in %.1f s", time.monotonic() - t0)


def _build(out: Path, hf_dir: Path) -> None:
    t0 = time.monotonic()
    with quiet_build():
        export_diffusion(hf_dir, out)
    logger.info("tiny diffusion: exported in %.1f s", time.monotonic() - t0)


#: The files genai's image pipelines read.
DIFFUSION_FILES = (
    "model_index.json",
    "scheduler/scheduler_config.json",
    "text_encoder/openvino_model.xml",
    "tokenizer/openvino_tokenizer.xml",
    "unet/openvino_model.xml",
    "vae_decoder/openvino_model.xml",
    "vae_encoder/openvino_model.xml",
)


def export_diffusion(hf_dir: Path, out: Path) -> None:
    """The product's export (serving/repository/export.py, as `--pull --task image_generation`
    runs it: optimum-intel's text-to-image, then the CLIP tokenizer IRs), fp32."""
    from serving.repository.export import export_image_generation

    export_image_generation(hf_dir, out, "fp32", logger.debug)
    for name in DIFFUSION_FILES:
        if not (out / name).is_file():
            raise RuntimeError(f"export did not produce {name} in {out}")

"""The tiny VLM: a LLaVA (transformers ``LlavaForConditionalGeneration``: a 2-layer CLIP vision
tower at 28 px with 14 px patches, a 2-layer Llama) trained in about a minute on
:mod:`tests.models.vlm_data`, exported with optimum-intel (``image-text-to-text``), so greedy
decoding in openvino-genai gives every answer of :data:`VLM_CASES` exactly.

How openvino-genai 2026.4 takes a prompt for this model (each point checked by test_vlm.py):

* Render the chat template yourself (:data:`VLM_CHAT_TEMPLATE` writes each image part as the
  native tag ``<image>`` where the user put it, in any turn) and pass the *text* with
  ``GenerationConfig.apply_chat_template = False`` to ``ContinuousBatchingPipeline.add_request(id,
  prompt, images, config)`` (or ``VLMPipeline.generate(prompt, images=..., generation_config=...)``).
  Both apply the model's chat template to the string by default (True): a rendered prompt is
  then wrapped in a second user turn (8 more tokens here).
* ``images``: every image of the conversation, in prompt order, each an ``ov.Tensor`` uint8
  (1, H, W, 3) RGB; the n-th ``<image>`` tag takes the n-th image, whatever turn it is in. The
  universal tags ``<ov_genai_image_0>``, ``<ov_genai_image_1>``... name an image by index instead;
  the number of native tags must equal the number of images (else add_request raises); a prompt
  without any tag gets the images put in front of the whole text.
* genai tokenizes the text itself (special tokens as the tokenizer adds them; none here), after
  replacing each tag by 4 ``<image>`` tokens (one per 14 px patch of the 28 px crop; CLS
  dropped) and a newline: 5 prompt tokens per image (:func:`expand_image_tags`;
  ``perf_metrics.get_num_input_tokens()`` counts them). Text-only requests work with
  ``images=[]`` or the ``add_request(id, prompt, config)`` overload. Token ids do NOT work on a
  VLM: ``add_request(id, ids_tensor, config)`` is accepted, but the next ``step()`` raises (no
  ``input_ids`` port on the language model), the request stays unfinished and every later
  ``step()`` raises too: the pipeline is broken.
* genai resizes (shortest edge 28, bicubic), centre-crops and normalizes each image itself, from
  ``preprocessor_config.json``; training uses transformers' CLIP processor on the same uint8
  images, and the build checks the answers through genai.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from tests.models.common import RECIPE_VERSION, cached_build, default_cache_root, package_versions, quiet_build
from tests.models.training import MIN_MARGIN
from tests.models.vlm_data import (
    COLORS,
    ENDOFTEXT,
    IM_END,
    IM_START,
    IMAGE_TOKEN,
    VLM_ANSWERS,
    VLM_CASES,
    VLM_CHAT_TEMPLATE,
    VLM_SPECIAL_TOKENS,
    VlmCase,
    training_cases,
)
from tests.models.vlm_train import (
    encode_cases,
    expand_image_tags,
    min_margin,
    render_vlm_prompt,
    tokenizer_corpus,
    train_vlm,
    train_vlm_tokenizer,
)

logger = logging.getLogger("tests.models.vlm")

#: Bump when vlm_data.py renders different images or conversations for the same recipe.
VLM_DATA_VERSION = 1


def tiny_vlm_recipe() -> dict[str, Any]:
    """Everything that decides what :func:`build_tiny_vlm` produces."""
    return {
        "recipe_version": RECIPE_VERSION,
        "data_version": VLM_DATA_VERSION,
        "kind": "tiny-vlm",
        "vision": {
            "hidden_size": 48,
            "intermediate_size": 96,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 28,
            "patch_size": 14,
        },
        "text": {
            "hidden_size": 64,
            "intermediate_size": 192,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 512,
            "rope_theta": 10000.0,
        },
        "llava": {"vision_feature_layer": -1, "vision_feature_select_strategy": "default", "projector_hidden_act": "gelu"},
        "tokenizer": {"vocab_size": 320, "min_frequency": 2, "special_tokens": VLM_SPECIAL_TOKENS},
        "data": {
            "seed": 7,  # the training set: `variants` conversations of each kind, in both part orders
            "variants": {"color": 5, "shape": 10, "followup": 3, "two_colors": 2, "text": 4},
            "validation_seed": 8,  # never trained on: the margin is checked on these and VLM_CASES
            "validation_variants": {"color": 3, "shape": 3, "followup": 2, "two_colors": 1, "text": 1},
        },
        "training": {"seed": 1234, "steps": 300, "lr": 3e-3, "weight_decay": 0.0, "warmup": 20, "min_margin": MIN_MARGIN},
        "chat_template": VLM_CHAT_TEMPLATE,
        "colors": COLORS,
        "answers": VLM_ANSWERS,
        "cases": [[c.name, render_vlm_prompt(c.messages), c.answer] for c in VLM_CASES],
        "weight_format": "fp32",
        "versions": package_versions(),
    }


def build_tiny_vlm(cache_root: Path | None = None) -> Path:
    """The tiny trained VLM; greedy decoding in openvino-genai gives every VLM_CASES answer."""
    recipe = tiny_vlm_recipe()
    return cached_build(cache_root or default_cache_root(), "tiny-vlm", recipe, lambda out: _build(out, recipe))


def tokens_per_image(recipe: dict[str, Any]) -> int:
    """Image tokens per image: one per patch (the "default" feature strategy drops CLS)."""
    return (recipe["vision"]["image_size"] // recipe["vision"]["patch_size"]) ** 2


def _build(out: Path, recipe: dict[str, Any]) -> None:
    import numpy as np
    import torch

    with quiet_build():
        from transformers import LlavaForConditionalGeneration

        t0 = time.monotonic()
        data = recipe["data"]
        train_cases = training_cases(np.random.default_rng(data["seed"]), data["variants"])
        held_out = training_cases(np.random.default_rng(data["validation_seed"]), data["validation_variants"])
        hf_tok = train_vlm_tokenizer(tokenizer_corpus(train_cases + VLM_CASES), recipe["tokenizer"])
        processor = _processor(recipe, hf_tok)
        per_image = tokens_per_image(recipe)
        examples = encode_cases(train_cases, hf_tok, processor.image_processor, per_image)
        torch.manual_seed(recipe["training"]["seed"])
        model = LlavaForConditionalGeneration(_llava_config(recipe, hf_tok))
        loss = train_vlm(model, examples, recipe["training"], hf_tok.convert_tokens_to_ids(ENDOFTEXT))
        checked_cases = VLM_CASES + held_out
        margin, where = min_margin(model, encode_cases(checked_cases, hf_tok, processor.image_processor, per_image))
        t1 = time.monotonic()
        logger.info(
            "tiny VLM: trained on %d conversations in %.1f s, loss %.6f, smallest logit margin %.2f", len(examples), t1 - t0, loss, margin
        )
        if margin < recipe["training"]["min_margin"]:
            case = checked_cases[where]
            raise RuntimeError(f"tiny VLM: logit margin {margin:.2f} < {recipe['training']['min_margin']} on {case.name}: train longer")
        hf_dir = out / "hf"
        _save_hf(model, processor, hf_dir)
        export_vlm(hf_dir, out)
        t2 = time.monotonic()
        logger.info("tiny VLM: exported in %.1f s", t2 - t1)
        verify_tiny_vlm(out)
        logger.info("tiny VLM: verified in %.1f s", time.monotonic() - t2)


def _processor(recipe: dict[str, Any], hf_tok: Any) -> Any:
    from transformers import LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    side = recipe["vision"]["image_size"]
    # the PIL backend is CLIPImageProcessor without torchvision (which stays out)
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=hf_tok,
        patch_size=recipe["vision"]["patch_size"],
        vision_feature_select_strategy=recipe["llava"]["vision_feature_select_strategy"],
        chat_template=VLM_CHAT_TEMPLATE,
        num_additional_image_tokens=1,  # CLIP's CLS, dropped by the "default" strategy
    )


def _llava_config(recipe: dict[str, Any], hf_tok: Any) -> Any:
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    text = recipe["text"]
    pad = hf_tok.convert_tokens_to_ids(ENDOFTEXT)
    # transformers 5 writes rope_parameters (no rope_theta); keyword dicts keep mypy off the
    # configs' generated signatures
    text_kwargs: dict[str, Any] = {
        **{k: v for k, v in text.items() if k != "rope_theta"},
        "vocab_size": len(hf_tok),
        "rope_parameters": {"rope_type": "default", "rope_theta": text["rope_theta"]},
        "bos_token_id": pad,  # the tokenizer adds no BOS
        "eos_token_id": hf_tok.convert_tokens_to_ids(IM_END),
        "pad_token_id": pad,
    }
    vision_kwargs: dict[str, Any] = {**recipe["vision"], "projection_dim": recipe["vision"]["hidden_size"]}
    llava_kwargs: dict[str, Any] = {
        **recipe["llava"],
        "vision_config": CLIPVisionConfig(**vision_kwargs),
        "text_config": LlamaConfig(**text_kwargs),
        "image_token_index": hf_tok.convert_tokens_to_ids(IMAGE_TOKEN),
        "image_seq_length": tokens_per_image(recipe),
    }
    return LlavaConfig(**llava_kwargs)


def _save_hf(model: Any, processor: Any, hf_dir: Path) -> None:
    from transformers import GenerationConfig

    text = model.config.text_config
    model.generation_config = GenerationConfig(
        bos_token_id=text.bos_token_id, eos_token_id=text.eos_token_id, pad_token_id=text.pad_token_id, do_sample=False
    )
    model.save_pretrained(hf_dir, safe_serialization=True)
    processor.save_pretrained(hf_dir)
    _write_tokenizer_files(hf_dir)


def _write_tokenizer_files(folder: Path) -> None:
    """chat_template.jinja, a tokenizer_config.json transformers 4 reads too (5 writes a
    ``TokenizersBackend`` class and list-valued extra tokens), and ``preprocessor_config.json``
    (what genai reads; transformers 5 writes only ``processor_config.json``)."""
    (folder / "chat_template.jinja").write_text(VLM_CHAT_TEMPLATE)
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": IM_END,
        "pad_token": ENDOFTEXT,
        "additional_special_tokens": [IM_START, IMAGE_TOKEN],
        "model_max_length": 2048,
        "clean_up_tokenization_spaces": False,
        "padding_side": "left",
        "chat_template": VLM_CHAT_TEMPLATE,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    processor = json.loads((folder / "processor_config.json").read_text())
    (folder / "preprocessor_config.json").write_text(json.dumps(processor["image_processor"], indent=2) + "\n")


def export_vlm(hf_dir: Path, out: Path) -> None:
    """The product's export (image-text-to-text, fp32), the tokenizer IRs, our tokenizer files."""
    from serving.repository.export import convert_tokenizer, optimum_export

    optimum_export(hf_dir, out, "image-text-to-text", "fp32", logger.debug)
    convert_tokenizer(hf_dir, out, with_detokenizer=True)
    for name in ("tokenizer.json", "config.json", "generation_config.json", "processor_config.json"):
        if not (out / name).exists():
            shutil.copy2(hf_dir / name, out / name)
    _write_tokenizer_files(out)
    for name in VLM_FILES:
        if not (out / name).is_file():
            raise RuntimeError(f"export did not produce {name} in {out}")


#: The files a VLM folder needs (genai reads every one).
VLM_FILES = (
    "openvino_language_model.xml",
    "openvino_text_embeddings_model.xml",
    "openvino_vision_embeddings_model.xml",
    "openvino_tokenizer.xml",
    "openvino_detokenizer.xml",
    "config.json",
    "generation_config.json",
    "preprocessor_config.json",
    "tokenizer.json",
    "chat_template.jinja",
)


# --------------------------------------------------------------------------- openvino-genai


def ov_images(case: VlmCase) -> list[Any]:
    """The case's images as genai takes them: ov.Tensor uint8 (1, H, W, 3)."""
    import openvino as ov

    return [ov.Tensor(image[None].copy()) for image in case.images]


def greedy_config(max_new_tokens: int = 24) -> Any:
    import openvino_genai

    config = openvino_genai.GenerationConfig()
    config.max_new_tokens = max_new_tokens
    config.do_sample = False
    config.apply_chat_template = False  # the prompt is rendered already
    return config


def cb_pipeline(model_dir: Path, precision: str | None = None) -> Any:
    import openvino_genai

    scheduler = openvino_genai.SchedulerConfig()
    scheduler.cache_size = 0
    properties = {"INFERENCE_PRECISION_HINT": precision} if precision else {}
    return openvino_genai.ContinuousBatchingPipeline(str(model_dir), scheduler, "CPU", properties)


def cb_generate(pipe: Any, cases: list[VlmCase], max_new_tokens: int = 24) -> list[list[int]]:
    """Greedy generated ids of every case, all added at once to the continuous-batching pipeline
    (``add_request(id, rendered prompt, images, config)``) and stepped together."""
    handles = [
        pipe.add_request(i, render_vlm_prompt(case.messages), ov_images(case), greedy_config(max_new_tokens))
        for i, case in enumerate(cases)
    ]
    while pipe.has_non_finished_requests():
        pipe.step()
    return [list(handle.read_all()[0].generated_ids) for handle in handles]


def verify_tiny_vlm(model_dir: Path) -> None:
    """Raise RuntimeError unless genai's continuous batching gives every VLM_CASES answer exactly
    (then eos), at the CPU's default precision and in f32, and genai's tokenizer encodes every
    expanded prompt as the Hugging Face one did in training."""
    import openvino_genai
    from transformers import AutoTokenizer

    hf_tok = AutoTokenizer.from_pretrained(model_dir)
    ov_tok = openvino_genai.Tokenizer(str(model_dir))
    eos = hf_tok.convert_tokens_to_ids(IM_END)
    per_image = json.loads((Path(model_dir) / "config.json").read_text())["image_seq_length"]
    failures = []
    for case in VLM_CASES:
        prompt = expand_image_tags(render_vlm_prompt(case.messages), per_image)
        if hf_tok.encode(prompt, add_special_tokens=False) != list(ov_tok.encode(prompt, add_special_tokens=False).input_ids.data[0]):
            failures.append(f"{case.name}: the OpenVINO tokenizer encodes the prompt differently")
    for precision in (None, "f32"):
        got = cb_generate(cb_pipeline(model_dir, precision), VLM_CASES)
        for case, ids in zip(VLM_CASES, got, strict=True):
            expected = [*hf_tok.encode(case.answer, add_special_tokens=False), eos]
            if ids != expected:
                text = hf_tok.decode(ids, skip_special_tokens=True)
                failures.append(f"{case.name} ({precision or 'default precision'}): expected {case.answer!r}, got {text!r} ({ids})")
    if failures:
        raise RuntimeError("tiny VLM verification failed:\n  " + "\n  ".join(failures))

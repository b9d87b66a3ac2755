"""Pulling a vision-language model (VLM): telling a Hugging Face folder holds one, exporting it
with optimum-intel's `image-text-to-text` task, and completing a VLM folder with the files
openvino-genai reads but transformers 5 no longer writes.

OVMS serves VLMs under `--task text_generation` too; the folder decides (the engine's AUTO rule,
calculators/llm/pipeline_type.py), so no separate task is needed here either.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from serving.repository.export import convert_tokenizer, optimum_export
from serving.repository.layout import ModelRepositoryError, Progress, atomic_write

OPTIMUM_VLM_TASK = "image-text-to-text"
PREPROCESSOR_CONFIG = "preprocessor_config.json"  # what genai reads for image preprocessing
PROCESSOR_CONFIG = "processor_config.json"  # transformers 5: the processor's settings, image processor inside
CHAT_TEMPLATE_JINJA = "chat_template.jinja"
CHAT_TEMPLATE_JSON = "chat_template.json"  # transformers 4's processor chat template
# Files serving reads beside the IR (optimum writes most; the source's own are copied when missing).
KEPT_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    CHAT_TEMPLATE_JINJA,
    CHAT_TEMPLATE_JSON,
    PROCESSOR_CONFIG,
    PREPROCESSOR_CONFIG,
)


def _optimum_vlm_types() -> frozenset[str]:
    """The model types optimum-intel exports as image-text-to-text (empty without optimum)."""
    try:
        from optimum.exporters.openvino.utils import MULTI_MODAL_TEXT_GENERATION_MODELS
    except ImportError:
        return frozenset()
    return frozenset(MULTI_MODAL_TEXT_GENERATION_MODELS)


def is_hf_vision_language(config: dict[str, Any], *, ask_optimum: bool = True) -> bool:
    """A Hugging Face config.json of a vision-language model: a vision tower's `vision_config`
    (LLaVA, Qwen2-VL, InternVL, Gemma 3, SmolVLM...), or a model type optimum-intel exports as
    image-text-to-text (Phi-3-vision keeps its vision settings elsewhere). `ask_optimum=False`
    skips the import of optimum (seconds) where nothing is exported."""
    if isinstance(config.get("vision_config"), dict):
        return True
    return ask_optimum and str(config.get("model_type", "")) in _optimum_vlm_types()


def export_vision_language(hf_folder: Path, out: Path, weight_format: str, progress: Progress, model_id: str | None = None) -> None:
    """optimum-intel's image-text-to-text export (language, text- and vision-embeddings models),
    the tokenizer IRs, and the source's files serving reads; then :func:`complete_vlm_folder`."""
    optimum_export(hf_folder, out, OPTIMUM_VLM_TASK, weight_format, progress, model_id)
    progress("converting tokenizer (openvino_tokenizers)")
    convert_tokenizer(hf_folder, out)
    for name in KEPT_FILES:
        if not (out / name).exists() and (hf_folder / name).is_file():
            shutil.copy2(hf_folder / name, out / name)
    complete_vlm_folder(out, progress)


def complete_vlm_folder(folder: Path, progress: Progress) -> None:
    """Write what genai and our chat templating read when only newer files are there:
    preprocessor_config.json from processor_config.json's `image_processor` (transformers 5
    saves only the latter), and chat_template.jinja from a processor's chat_template.json."""
    if not (folder / PREPROCESSOR_CONFIG).is_file():
        image_processor = _read_json(folder / PROCESSOR_CONFIG).get("image_processor")
        if not isinstance(image_processor, dict):
            raise ModelRepositoryError(
                f"{folder}: no {PREPROCESSOR_CONFIG}, and no image_processor in {PROCESSOR_CONFIG}: "
                "openvino-genai cannot preprocess images for this model"
            )
        progress(f"writing {PREPROCESSOR_CONFIG} (from {PROCESSOR_CONFIG}'s image_processor)")
        atomic_write(folder / PREPROCESSOR_CONFIG, json.dumps(image_processor, indent=2) + "\n")
    if not (folder / CHAT_TEMPLATE_JINJA).is_file():
        template = _read_json(folder / CHAT_TEMPLATE_JSON).get("chat_template")
        if isinstance(template, str) and template:
            progress(f"writing {CHAT_TEMPLATE_JINJA} (from {CHAT_TEMPLATE_JSON})")
            atomic_write(folder / CHAT_TEMPLATE_JINJA, template)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelRepositoryError(f"{path}: not valid JSON: {exc}") from None
    return data if isinstance(data, dict) else {}

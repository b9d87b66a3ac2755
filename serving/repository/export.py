"""Exporting a Hugging Face folder to OpenVINO: optimum-intel's main_export (the one call site in
the project) and the tokenizer conversion with openvino_tokenizers."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

from serving.repository.layout import (
    DETOKENIZER_IR,
    OPTIMUM_TASKS,
    SENTENCE_TRANSFORMERS_FILES,
    TOKENIZER_FILES,
    TOKENIZER_IR,
    ModelRepositoryError,
    Progress,
)
from serving.repository.quantization import describe, weight_quantization


def _require_openvino_tokenizers() -> Any:
    try:
        import openvino_tokenizers
    except ImportError as exc:
        raise ModelRepositoryError(f"converting the tokenizer needs openvino_tokenizers (pip install openvino-tokenizers): {exc}") from None
    return openvino_tokenizers


def convert_tokenizer(hf_folder: Path, out: Path, *, with_detokenizer: bool = True, number_of_inputs: int = 1) -> None:
    """openvino_tokenizer.xml (and openvino_detokenizer.xml) from the folder's Hugging Face tokenizer;
    ``number_of_inputs=2`` makes a pair tokenizer (query, document) for a cross-encoder."""
    import openvino as ov
    from transformers import AutoTokenizer

    openvino_tokenizers = _require_openvino_tokenizers()
    try:
        hf_tok = AutoTokenizer.from_pretrained(hf_folder)
        if with_detokenizer:
            ov_tok, ov_detok = openvino_tokenizers.convert_tokenizer(hf_tok, with_detokenizer=True)
        else:
            kwargs = {"number_of_inputs": number_of_inputs} if number_of_inputs != 1 else {}
            ov_tok, ov_detok = openvino_tokenizers.convert_tokenizer(hf_tok, **kwargs), None
    except Exception as exc:
        raise ModelRepositoryError(f"cannot convert the tokenizer of {hf_folder}: {type(exc).__name__}: {exc}") from None
    ov.save_model(ov_tok, out / TOKENIZER_IR)
    if ov_detok is not None:
        ov.save_model(ov_detok, out / DETOKENIZER_IR)


def optimum_export(
    hf_folder: Path, out: Path, task: str, weight_format: str, progress: Progress, model_id: str | None = None, **extra: Any
) -> None:
    """optimum-intel's export with our settings; any failure is one clear ModelRepositoryError.

    As `optimum-cli export openvino` does: main_export, then for int4/int8 its quantization step
    (main_export alone leaves the weights uncompressed when given a quantization config) with the
    config serving/repository/quantization.py picks (`model_id`: the Hugging Face id, for
    optimum's per-model defaults). The one call site of both in the project: pull/export here, and
    the test-model builders (tests/models/) too, so a test model is exported as a user's is."""
    _require_openvino_tokenizers()  # optimum silently skips the tokenizer without it: check first
    try:
        from optimum.exporters.openvino import main_export
        from optimum.exporters.openvino.__main__ import _main_quantize
        from optimum.intel import OVConfig
    except ImportError as exc:
        raise ModelRepositoryError(f"exporting needs optimum-intel (pip install optimum-intel): {exc}") from None
    chosen = weight_quantization(weight_format, [i for i in (model_id, str(hf_folder)) if i])
    ov_config = OVConfig(dtype=weight_format) if chosen is None else OVConfig(quantization_config=chosen[0])
    progress(f"exporting {hf_folder} to OpenVINO ({weight_format} weights, optimum-intel, task {task})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch tracing warnings: noise for someone pulling a model
            main_export(str(hf_folder), output=out, task=task, ov_config=ov_config, convert_tokenizer=False, local_files_only=True, **extra)
            if chosen is not None:
                whose = f"optimum-intel's default for {model_id or hf_folder.name}" if chosen[1] else "optimum-intel's generic default"
                progress(f"compressing weights: {describe(chosen[0])} ({whose})")
                _main_quantize(
                    model_name_or_path=str(hf_folder),
                    task=task,
                    library_name=extra.get("library_name", "transformers"),
                    quantization_config=ov_config.quantization_config,
                    output=out,
                    cache_dir=None,
                )
    except Exception as exc:
        raise ModelRepositoryError(f"export of {hf_folder} failed: {type(exc).__name__}: {exc}") from None


def export_text_generation(hf_folder: Path, out: Path, weight_format: str, progress: Progress, model_id: str | None = None) -> None:
    """optimum-intel export (stateful, with KV cache) plus openvino_tokenizers conversion."""
    optimum_export(hf_folder, out, "text-generation-with-past", weight_format, progress, model_id)
    progress("converting tokenizer (openvino_tokenizers)")
    convert_tokenizer(hf_folder, out)
    # optimum writes most of these; make sure of the ones serving reads (chat template, generation defaults)
    kept = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja")
    _copy(hf_folder, out, (*kept, "special_tokens_map.json"), overwrite=False)


def export_encoder(hf_folder: Path, out: Path, task: str, weight_format: str, progress: Progress, model_id: str | None = None) -> None:
    """Embeddings (optimum task feature-extraction: the IR gives token states; pooling comes from
    the copied sentence-transformers files) or rerank (text-classification: a cross-encoder's
    logits) export, plus the tokenizer: openvino_tokenizer.xml (a pair tokenizer for rerank) and
    the Hugging Face tokenizer files."""
    # token states / logits; pooling is the embeddings calculator's
    optimum_export(hf_folder, out, OPTIMUM_TASKS[task], weight_format, progress, model_id, library_name="transformers")
    progress("converting tokenizer (openvino_tokenizers)")
    try:
        convert_tokenizer(hf_folder, out, with_detokenizer=False, number_of_inputs=2 if task == "rerank" else 1)
    except ModelRepositoryError as exc:
        if task != "rerank":
            raise
        progress(f"no OpenVINO pair tokenizer ({exc}); the rerank calculator uses tokenizer.json")
    copied = ("config.json", *TOKENIZER_FILES, *(SENTENCE_TRANSFORMERS_FILES if task == "embeddings" else ()))
    _copy(hf_folder, out, copied, overwrite=True)  # the originals, not optimum's re-saved ones


def _copy(hf_folder: Path, out: Path, files: tuple[str, ...], *, overwrite: bool) -> None:
    """Each of `files` the HF folder has, to the same place in `out` (only where missing unless `overwrite`)."""
    for file in files:
        if (hf_folder / file).is_file() and (overwrite or not (out / file).exists()):
            (out / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(hf_folder / file, out / file)


_MEDIA_KEPT = ("config.json", "tokenizer.json", "tokenizer_config.json")  # beside a Whisper / SpeechT5 export, where optimum wrote none


def export_image_generation(hf_folder: Path, out: Path, weight_format: str, progress: Progress, model_id: str | None = None) -> None:
    """A diffusers folder (model_index.json) -> optimum-intel's text-to-image export (one IR per
    component folder), plus openvino_tokenizer.xml in each tokenizer folder (genai reads those)."""
    optimum_export(hf_folder, out, OPTIMUM_TASKS["image_generation"], weight_format, progress, model_id, library_name="diffusers")
    for sub in ("tokenizer", "tokenizer_2", "tokenizer_3"):  # SD / SDXL / SD3 layouts
        if (hf_folder / sub).is_dir():
            progress(f"converting {sub} (openvino_tokenizers)")
            (out / sub).mkdir(exist_ok=True)
            convert_tokenizer(hf_folder / sub, out / sub, with_detokenizer=True)


def export_speech_to_text(hf_folder: Path, out: Path, weight_format: str, progress: Progress, model_id: str | None = None) -> None:
    """A Whisper folder -> optimum-intel's automatic-speech-recognition-with-past export (stateful
    decoder) traced at the folder's window (preprocessor_config.json's nb_max_frames: optimum
    assumes 30 s), the tokenizer IRs, and the folder's own generation/preprocessor configs."""
    shapes: dict[str, Any] = {}
    try:
        frames = json.loads((hf_folder / "preprocessor_config.json").read_text(encoding="utf-8")).get("nb_max_frames")
    except (OSError, json.JSONDecodeError, AttributeError):
        frames = None
    if isinstance(frames, int) and frames > 0:
        shapes["nb_max_frames"] = frames
    optimum_export(hf_folder, out, OPTIMUM_TASKS["speech2text"], weight_format, progress, model_id, **shapes)
    progress("converting tokenizer (openvino_tokenizers)")
    convert_tokenizer(hf_folder, out)
    _copy(hf_folder, out, _MEDIA_KEPT, overwrite=False)
    _copy(hf_folder, out, ("generation_config.json", "preprocessor_config.json"), overwrite=True)  # the originals


def export_text_to_speech(
    hf_folder: Path, out: Path, vocoder: Path, weight_format: str, progress: Progress, model_id: str | None = None
) -> None:
    """A SpeechT5 folder -> optimum-intel's text-to-audio export with the HiFi-GAN `vocoder` folder
    (optimum takes it as a model kwarg), the tokenizer IRs, and the folder's voices/*.bin (speaker
    embeddings the T2sCalculator lists as voices)."""
    optimum_export(hf_folder, out, OPTIMUM_TASKS["text2speech"], weight_format, progress, model_id, model_kwargs={"vocoder": str(vocoder)})
    progress("converting tokenizer (openvino_tokenizers)")
    convert_tokenizer(hf_folder, out)
    _copy(hf_folder, out, _MEDIA_KEPT, overwrite=False)
    if (hf_folder / "voices").is_dir():
        shutil.copytree(hf_folder / "voices", out / "voices", dirs_exist_ok=True)

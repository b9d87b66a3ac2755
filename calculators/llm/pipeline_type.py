"""Which engine a servable runs: OVMS's `pipeline_type` rule applied to the model folder's kind.

A folder holds a vision-language model (VLM) when optimum-intel's `image-text-to-text` export is
there: the vision and text embeddings models beside `openvino_language_model.xml` (OVMS reads the
same two embeddings models). Otherwise it is a text model (`openvino_model.xml`). AUTO (or no
`pipeline_type`) picks continuous batching (LM_CB / VLM_CB), and the stateful pipeline (LM / VLM)
on NPU, as OVMS does; a type that does not fit the folder is a load error naming both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from graphs.errors import UnavailableError

PipelineType = Literal["LM", "LM_CB", "VLM", "VLM_CB"]

TEXT_MODEL = "openvino_model.xml"
LANGUAGE_MODEL = "openvino_language_model.xml"  # a VLM's text decoder
VISION_MODEL = "openvino_vision_embeddings_model.xml"
TEXT_EMBEDDINGS_MODEL = "openvino_text_embeddings_model.xml"
TALKER_MODEL = "openvino_talker_model.xml"  # an omni (speech-out) model: not served


def is_vlm_folder(folder: Path) -> bool:
    """The folder holds a vision-language export (its vision and text embeddings models)."""
    return (folder / VISION_MODEL).is_file() and (folder / TEXT_EMBEDDINGS_MODEL).is_file()


def is_stateful(pipeline: str) -> bool:
    """LM and VLM run one request at a time (LLMPipeline / VLMPipeline); the _CB types batch."""
    return pipeline in ("LM", "VLM")


def is_vision(pipeline: str) -> bool:
    return pipeline in ("VLM", "VLM_CB")


def resolve_pipeline(pipeline_type: str | None, device: str, folder: Path) -> PipelineType:
    """The engine for `folder` given the node's `pipeline_type` (None or AUTO: by device)."""
    vlm = is_vlm_folder(folder)
    if vlm and (folder / TALKER_MODEL).is_file():
        raise UnavailableError(f"{folder} holds an omni model ({TALKER_MODEL}): ovserve does not serve omni models")
    if vlm and not (folder / LANGUAGE_MODEL).is_file():
        raise UnavailableError(f"{folder} holds a vision model ({VISION_MODEL}) but no {LANGUAGE_MODEL}")
    if pipeline_type in (None, "AUTO"):
        npu = device.split(".")[0] == "NPU"
        if vlm:
            return "VLM" if npu else "VLM_CB"
        return "LM" if npu else "LM_CB"
    if vlm and not is_vision(pipeline_type):
        raise UnavailableError(
            f"pipeline_type {pipeline_type} does not fit {folder}: it holds a vision-language model ({VISION_MODEL}); "
            "use pipeline_type VLM_CB or VLM, or leave it unset (AUTO)"
        )
    if not vlm and is_vision(pipeline_type):
        raise UnavailableError(
            f"pipeline_type {pipeline_type} does not fit {folder}: it holds a text-only model (no {VISION_MODEL}); "
            "use pipeline_type LM_CB or LM, or leave it unset (AUTO)"
        )
    assert pipeline_type in ("LM", "LM_CB", "VLM", "VLM_CB")
    return pipeline_type  # type: ignore[return-value]  # narrowed by the assert


def engine_model_file(folder: Path, pipeline: str) -> Path:
    """The model file the engine loads first: its absence is the clearest load error."""
    return folder / (LANGUAGE_MODEL if is_vision(pipeline) else TEXT_MODEL)

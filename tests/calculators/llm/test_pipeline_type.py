"""pipeline_type against the model folder's kind (OVMS's rule), on folders that only name the files:
AUTO by device and folder, a type that does not fit the folder refused at load by name."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from calculators.llm.options import LLMOptions
from calculators.llm.pipeline_type import (
    LANGUAGE_MODEL,
    TALKER_MODEL,
    TEXT_EMBEDDINGS_MODEL,
    TEXT_MODEL,
    VISION_MODEL,
    is_vlm_folder,
    resolve_pipeline,
)
from calculators.llm.resource import create_llm_resource
from graphs.calculator import ResourceContext
from graphs.errors import UnavailableError


def folder(root: Path, name: str, *files: str) -> Path:
    path = root / name
    path.mkdir()
    for file in files:
        (path / file).write_text("")
    return path


@pytest.fixture
def text_dir(tmp_path: Path) -> Path:
    return folder(tmp_path, "text", TEXT_MODEL)


@pytest.fixture
def vlm_dir(tmp_path: Path) -> Path:
    return folder(tmp_path, "vlm", LANGUAGE_MODEL, VISION_MODEL, TEXT_EMBEDDINGS_MODEL)


@pytest.mark.parametrize(
    ("pipeline_type", "device", "text", "vision"),
    [
        (None, "CPU", "LM_CB", "VLM_CB"),
        ("AUTO", "CPU", "LM_CB", "VLM_CB"),
        ("AUTO", "GPU.1", "LM_CB", "VLM_CB"),
        (None, "NPU", "LM", "VLM"),
        ("AUTO", "NPU", "LM", "VLM"),
    ],
)
def test_auto_by_device_and_folder(text_dir: Path, vlm_dir: Path, pipeline_type: str | None, device: str, text: str, vision: str) -> None:
    assert resolve_pipeline(pipeline_type, device, text_dir) == text
    assert resolve_pipeline(pipeline_type, device, vlm_dir) == vision


def test_explicit_types_that_fit(text_dir: Path, vlm_dir: Path) -> None:
    assert [resolve_pipeline(t, "CPU", text_dir) for t in ("LM", "LM_CB")] == ["LM", "LM_CB"]
    assert [resolve_pipeline(t, "NPU", vlm_dir) for t in ("VLM", "VLM_CB")] == ["VLM", "VLM_CB"]


@pytest.mark.parametrize("pipeline_type", ["LM", "LM_CB"])
def test_a_text_type_on_a_vision_folder_names_both(vlm_dir: Path, pipeline_type: str) -> None:
    with pytest.raises(UnavailableError) as caught:
        resolve_pipeline(pipeline_type, "CPU", vlm_dir)
    message = str(caught.value)
    assert f"pipeline_type {pipeline_type}" in message and str(vlm_dir) in message and "vision-language" in message
    assert "VLM_CB" in message  # what to use instead


@pytest.mark.parametrize("pipeline_type", ["VLM", "VLM_CB"])
def test_a_vision_type_on_a_text_folder_names_both(text_dir: Path, pipeline_type: str) -> None:
    with pytest.raises(UnavailableError) as caught:
        resolve_pipeline(pipeline_type, "CPU", text_dir)
    message = str(caught.value)
    assert f"pipeline_type {pipeline_type}" in message and str(text_dir) in message and "text-only" in message


def test_what_makes_a_vision_folder(tmp_path: Path) -> None:
    assert not is_vlm_folder(folder(tmp_path, "vision-only", LANGUAGE_MODEL, VISION_MODEL))  # no text embeddings
    omni = folder(tmp_path, "omni", LANGUAGE_MODEL, VISION_MODEL, TEXT_EMBEDDINGS_MODEL, TALKER_MODEL)
    with pytest.raises(UnavailableError, match="omni"):
        resolve_pipeline(None, "CPU", omni)
    headless = folder(tmp_path, "headless", VISION_MODEL, TEXT_EMBEDDINGS_MODEL)
    with pytest.raises(UnavailableError, match=LANGUAGE_MODEL):
        resolve_pipeline(None, "CPU", headless)


def test_options_tell_the_stateful_types() -> None:
    assert [LLMOptions(models_path="m", pipeline_type=t).stateful for t in ("LM", "LM_CB", "VLM", "VLM_CB")] == [True, False, True, False]
    assert LLMOptions(models_path="m", device="NPU").stateful and not LLMOptions(models_path="m").stateful


def load(options: LLMOptions, base: Path) -> None:
    asyncio.run(create_llm_resource(options, ResourceContext(base, "servable", "llm")))


def test_the_load_refuses_a_type_that_does_not_fit(vlm_dir: Path, text_dir: Path) -> None:
    """Before any worker starts: the servable fails with the message naming folder and option."""
    with pytest.raises(UnavailableError, match=r"pipeline_type LM_CB does not fit .*vlm"):
        load(LLMOptions(models_path="vlm", pipeline_type="LM_CB"), vlm_dir.parent)
    with pytest.raises(UnavailableError, match=r"pipeline_type VLM does not fit .*text"):
        load(LLMOptions(models_path="text", pipeline_type="VLM"), text_dir.parent)


def test_the_load_refuses_what_a_vision_engine_does_not_serve(vlm_dir: Path, tmp_path: Path) -> None:
    draft = folder(tmp_path, "draft", TEXT_MODEL)
    with pytest.raises(UnavailableError, match=r"draft_models_path\) is served with pipeline_type LM_CB only \(this servable runs VLM_CB"):
        load(LLMOptions(models_path="vlm", draft_models_path=str(draft)), vlm_dir.parent)
    adapter = {"name": "a", "path": str(draft)}
    with pytest.raises(UnavailableError, match=r"lora_adapters are served with pipeline_type LM_CB only \(this servable runs VLM_CB\)"):
        load(LLMOptions.model_validate({"models_path": "vlm", "lora_adapters": [adapter]}), vlm_dir.parent)

"""Pull mode and vision-language models, without exporting anything: telling an HF folder holds a
VLM, completing a VLM folder with the files genai reads, preparing from a VLM IR folder, and
`--pipeline_type` written into the graph. The optimum export runs in tests/e2e/test_pull_vlm.py."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from graphs.pbtxt import load_graph, parse_graph
from serving.repository import graph_file, layout, pull
from serving.repository.commands import graph_options_from_args
from serving.repository.vision import complete_vlm_folder, is_hf_vision_language

LLAVA_CONFIG = {"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava", "vision_config": {"model_type": "clip"}}
IMAGE_PROCESSOR = {"image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 28}, "crop_size": {"height": 28, "width": 28}}
PROCESSOR = {"image_processor": IMAGE_PROCESSOR, "processor_class": "LlavaProcessor", "patch_size": 14}
VLM_IR = (
    "openvino_language_model.xml",
    "openvino_text_embeddings_model.xml",
    "openvino_vision_embeddings_model.xml",
    "openvino_tokenizer.xml",
    "openvino_detokenizer.xml",
)


def test_vision_language_configs() -> None:
    assert is_hf_vision_language(LLAVA_CONFIG)
    assert is_hf_vision_language({"model_type": "phi3_v", "architectures": ["Phi3VForCausalLM"]})  # optimum's list
    assert not is_hf_vision_language({"model_type": "phi3_v"}, ask_optimum=False)
    assert not is_hf_vision_language({"model_type": "llama", "architectures": ["LlamaForCausalLM"]})


def test_a_vlm_is_text_generation(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(LLAVA_CONFIG))
    assert pull.infer_task(tmp_path) == "text_generation"  # as OVMS: the folder picks VLM_CB


def test_complete_writes_preprocessor_config_and_chat_template(tmp_path: Path) -> None:
    (tmp_path / "processor_config.json").write_text(json.dumps(PROCESSOR))  # transformers 5 writes only this
    (tmp_path / "chat_template.json").write_text(json.dumps({"chat_template": "{{ messages }}"}))  # transformers 4
    lines: list[str] = []
    complete_vlm_folder(tmp_path, lines.append)
    assert json.loads((tmp_path / "preprocessor_config.json").read_text()) == IMAGE_PROCESSOR
    assert (tmp_path / "chat_template.jinja").read_text() == "{{ messages }}"
    assert len(lines) == 2 and "preprocessor_config.json" in lines[0]


def test_complete_keeps_what_is_there(tmp_path: Path) -> None:
    (tmp_path / "preprocessor_config.json").write_text('{"mine": 1}')
    (tmp_path / "chat_template.jinja").write_text("mine")
    (tmp_path / "processor_config.json").write_text(json.dumps(PROCESSOR))
    complete_vlm_folder(tmp_path, print)
    assert (tmp_path / "preprocessor_config.json").read_text() == '{"mine": 1}'
    assert (tmp_path / "chat_template.jinja").read_text() == "mine"


def test_complete_without_an_image_processor_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(layout.ModelRepositoryError, match="cannot preprocess images"):
        complete_vlm_folder(tmp_path, print)


def vlm_ir_folder(folder: Path) -> Path:
    """A VLM export's file names (no real model: preparing an IR folder only copies it)."""
    folder.mkdir(parents=True)
    for name in VLM_IR:
        (folder / name).write_text("<net/>")
    (folder / "config.json").write_text(json.dumps(LLAVA_CONFIG))
    (folder / "processor_config.json").write_text(json.dumps(PROCESSOR))
    return folder


def test_prepare_a_vlm_ir_folder(tmp_path: Path) -> None:
    source = vlm_ir_folder(tmp_path / "src" / "tiny-vlm-ov")
    lines: list[str] = []
    prepared = pull.prepare_model(str(source), tmp_path / "models", graph_options={"pipeline_type": "VLM"}, progress=lines.append)
    assert prepared.path == tmp_path / "models" / "tiny-vlm-ov" and not prepared.reused
    assert "taking it as is" in lines[0]
    assert json.loads((prepared.path / "preprocessor_config.json").read_text()) == IMAGE_PROCESSOR
    assert not (source / "preprocessor_config.json").exists()  # the source is left alone
    (llm,) = [n for n in load_graph(prepared.path / "graph.pbtxt").nodes if "models_path" in n.options]
    assert llm.options["pipeline_type"] == "VLM" and llm.options["models_path"] == "./"


def test_a_vlm_folder_without_image_settings_is_refused(tmp_path: Path) -> None:
    source = vlm_ir_folder(tmp_path / "src" / "broken")
    (source / "processor_config.json").unlink()
    with pytest.raises(layout.ModelRepositoryError, match="no preprocessor_config.json"):
        pull.prepare_model(str(source), tmp_path / "models", progress=print)
    assert not list((tmp_path / "models").iterdir())  # no half-built folder left


def test_pipeline_type_goes_into_the_graph_bare() -> None:
    """`--pipeline_type` is a pull option (OVMS: --source_model ... --pipeline_type VLM), written
    as the enum name the proto takes."""
    options = graph_options_from_args(argparse.Namespace(pipeline_type="VLM_CB"))
    assert options == {"pipeline_type": "VLM_CB"}
    text = graph_file.graph_text(options)
    assert "pipeline_type: VLM_CB\n" in text
    (llm,) = [n for n in parse_graph(text, source="pulled").nodes if "models_path" in n.options]
    assert llm.options["pipeline_type"] == "VLM_CB"

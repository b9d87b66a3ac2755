"""`--source_model` for the media tasks without a model: the task inferred from a folder, OVMS's
graphs with the flags' options, an exported folder taken as is, image flags refused elsewhere.
The exports themselves run in tests/e2e/test_pull_media.py."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import calculators  # noqa: F401  (declares the media options types)
from graphs.pbtxt import load_graph, parse_graph
from serving.image_flags import add_image_flags
from serving.repository import commands, graph_file, layout, pull
from tests.helpers.server import ROOT


def test_infer_task_of_media_folders(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["WhisperForConditionalGeneration"]}))
    assert pull.infer_task(tmp_path) == "speech2text"
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["SpeechT5ForTextToSpeech"]}))
    assert pull.infer_task(tmp_path) == "text2speech"
    (tmp_path / "config.json").unlink()
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    assert pull.infer_task(tmp_path) == "image_generation"  # diffusers: no config.json at the top


def test_infer_task_refuses_a_mix(tmp_path: Path) -> None:
    arch = ["WhisperForConditionalGeneration", "SpeechT5ForTextToSpeech"]
    (tmp_path / "config.json").write_text(json.dumps({"architectures": arch}))
    with pytest.raises(layout.ModelRepositoryError, match="give --task"):
        pull.infer_task(tmp_path)


@pytest.mark.parametrize(
    ("task", "device_field"), [("image_generation", "device"), ("speech2text", "target_device"), ("text2speech", "target_device")]
)
def test_media_graphs_take_the_device_and_plugin_config(task: str, device_field: str) -> None:
    options = {"device": "GPU", "plugin_config": '{"NUM_STREAMS": "2"}', "cache_size": 3}  # cache_size: the LLM node's
    (node,) = parse_graph(graph_file.graph_text(options, task)).nodes
    stock = parse_graph(graph_file.graph_text(task=task)).nodes[0].options
    assert node.options == {**stock, device_field: "GPU", "plugin_config": '{"NUM_STREAMS": "2"}'}
    assert node.options["models_path"] == "./"


def test_image_flags_go_into_the_image_graph() -> None:
    parser = argparse.ArgumentParser()
    add_image_flags(parser)
    commands.add_model_flags(parser)
    args = parser.parse_args(["--max_resolution", "512x512", "--default_num_inference_steps", "4"])
    options = commands.graph_options_from_args(args)
    (node,) = parse_graph(graph_file.graph_text(options, "image_generation")).nodes
    assert (node.options["max_resolution"], node.options["default_num_inference_steps"]) == ("512x512", 4)
    with pytest.raises(layout.UsageError, match="max_resolution"):
        commands.graph_options_from_args(parser.parse_args(["--max_resolution", "big"]))


def _fake_whisper_ir(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in layout.REQUIRED_S2T_FILES:
        (folder / name).write_text("{}" if name.endswith(".json") else "")
    (folder / "config.json").write_text(json.dumps({"architectures": ["WhisperForConditionalGeneration"]}))
    return folder


def test_an_exported_folder_is_taken_as_is(tmp_path: Path) -> None:
    source = _fake_whisper_ir(tmp_path / "src" / "whisper-ov")
    seen: list[str] = []
    prepared = pull.prepare_model(str(source), tmp_path / "repo", progress=seen.append, graph_options={"device": "NPU"})
    assert prepared.path == tmp_path / "repo" / "whisper-ov" and any("taking it as is" in line for line in seen)
    (node,) = load_graph(prepared.path / "graph.pbtxt").nodes
    assert (node.calculator, node.options["target_device"]) == ("S2tCalculator", "NPU")
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == ["whisper-ov"]


def test_image_flags_are_refused_for_other_tasks(tmp_path: Path) -> None:
    source = _fake_whisper_ir(tmp_path / "src" / "w")
    with pytest.raises(layout.UsageError, match="--max_resolution is an image generation option"):
        pull.prepare_model(str(source), tmp_path / "repo", graph_options={"max_resolution": "64x64"}, progress=lambda _: None)
    assert not (tmp_path / "repo").exists() or not any((tmp_path / "repo").iterdir())


def test_an_incomplete_export_leaves_nothing(tmp_path: Path) -> None:
    source = _fake_whisper_ir(tmp_path / "src" / "w")
    (source / layout.DETOKENIZER_IR).unlink()
    with pytest.raises(layout.ModelRepositoryError, match="missing openvino_detokenizer.xml"):
        pull.prepare_model(str(source), tmp_path / "repo", task="speech2text", progress=lambda _: None)
    assert list((tmp_path / "repo").iterdir()) == []  # the hidden build folder is gone too


def test_speecht5_without_vocoder_offline_fails_clearly(tmp_path: Path) -> None:
    """No vocoder/ beside the checkpoint: the default HiFi-GAN is downloaded; offline that is one clear error."""
    source = tmp_path / "speecht5"
    source.mkdir()
    (source / "config.json").write_text(json.dumps({"architectures": ["SpeechT5ForTextToSpeech"]}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home")}
    cmd = [sys.executable, "-m", "serving.cli", "--source_model", str(source), "--model_repository_path", str(tmp_path / "repo"), "--pull"]
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    assert f"using {layout.DEFAULT_VOCODER}" in run.stderr
    assert f"cannot download {layout.DEFAULT_VOCODER} (offline mode: HF_HUB_OFFLINE is set)" in run.stderr
    assert list((tmp_path / "repo").iterdir()) == []

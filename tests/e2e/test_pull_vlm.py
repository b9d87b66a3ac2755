"""Pull mode on a vision-language model, as OVMS's VLM demo runs it: `--source_model <hub id>
--task text_generation --pipeline_type VLM` downloads a Hugging Face LLaVA (the trained tiny VLM's
own HF folder, from a local fake hub), exports it with optimum-intel (image-text-to-text), writes
the preprocessor_config.json transformers 5 leaves out, and serves it; and a VLM IR folder pulled
as is, then served with `--model_path`. Each answers a text-only and a 1-image chat as trained."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from graphs.pbtxt import load_graph
from tests.helpers.fake_hub import repo_from_folder, serve_hub
from tests.helpers.images import png_url
from tests.helpers.server import ROOT, Server, start_server
from tests.models import VLM_ANSWERS, VLM_CASES
from tests.models.vlm_data import TEXT_PROMPT

REPO_ID = "ovserve/tiny-vlm"
VLM_FILES = (
    "openvino_language_model.xml",
    "openvino_text_embeddings_model.xml",
    "openvino_vision_embeddings_model.xml",
    "openvino_tokenizer.xml",
    "openvino_detokenizer.xml",
    "preprocessor_config.json",
    "chat_template.jinja",
    "graph.pbtxt",
)


def transformers5_folder(folder: Path, out: Path) -> Path:
    """`folder` as transformers 5 saves a LLaVA: processor_config.json, no preprocessor_config.json."""
    shutil.copytree(folder, out, ignore=shutil.ignore_patterns("hf", "build_info.json", "preprocessor_config.json"))
    return out


def assert_answers(server: Server, model: str) -> None:
    """The trained answers to a text-only chat and a 1-image chat."""
    (circle,) = [c for c in VLM_CASES if c.name == "shape_circle_green_text_first"]
    with openai.OpenAI(base_url=f"{server.base_url}/v3", api_key="unused", max_retries=0) as client:
        reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": TEXT_PROMPT}], max_tokens=30)
        assert reply.choices[0].message.content == VLM_ANSWERS["text"]
        reply = client.chat.completions.create(model=model, messages=circle.openai_messages(png_url), max_tokens=16)  # type: ignore[arg-type]
        assert reply.choices[0].message.content == "circle."


def preprocessor_is_the_image_processor(servable: Path) -> bool:
    written = json.loads((servable / "preprocessor_config.json").read_text())
    return bool(written == json.loads((servable / "processor_config.json").read_text())["image_processor"])


@pytest.mark.skipif(importlib.util.find_spec("optimum.intel") is None, reason="exporting needs optimum-intel (the export tools)")
def test_hub_source_model_with_pipeline_type_vlm(tiny_vlm_dir: Path, tmp_path: Path) -> None:
    source = transformers5_folder(tiny_vlm_dir / "hf", tmp_path / "hf")
    repository = tmp_path / "models"
    with serve_hub({REPO_ID: repo_from_folder(source)}) as hub:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
        env.update(HF_ENDPOINT=hub.endpoint, HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1")
        flags = ("--source_model", REPO_ID, "--model_repository_path", str(repository), "--model_name", "tiny-vlm")
        server = start_server(*flags, "--task", "text_generation", "--pipeline_type", "VLM", "--weight-format", "fp32", env=env)
    try:
        output = "\n".join(server.output)
        assert f"downloading {REPO_ID}" in output and "task image-text-to-text" in output
        assert "writing preprocessor_config.json" in output
        assert "pipeline VLM (" in output  # the stateful VLMPipeline, as the graph written says
        assert_answers(server, "tiny-vlm")
    finally:
        assert server.stop() == 0, "\n".join(server.output)
    servable = repository / "tiny-vlm"
    assert [name for name in VLM_FILES if not (servable / name).is_file()] == []
    assert preprocessor_is_the_image_processor(servable)
    (llm,) = [n for n in load_graph(servable / "graph.pbtxt").nodes if "models_path" in n.options]
    assert llm.options["pipeline_type"] == "VLM" and llm.options["models_path"] == "./"


def test_vlm_ir_folder_pulled_as_is_then_served(tiny_vlm_dir: Path, tmp_path: Path) -> None:
    source = transformers5_folder(tiny_vlm_dir, tmp_path / "src" / "tiny-vlm-ov")
    repository = tmp_path / "models"
    command = [sys.executable, "-m", "serving.cli", "--source_model", str(source), "--model_repository_path", str(repository), "--pull"]
    pulled = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert pulled.returncode == 0, pulled.stderr
    assert "taking it as is" in pulled.stderr and "exporting" not in pulled.stderr
    servable = repository / "tiny-vlm-ov"
    assert preprocessor_is_the_image_processor(servable)
    assert not (source / "preprocessor_config.json").exists()
    (llm,) = [n for n in load_graph(servable / "graph.pbtxt").nodes if "models_path" in n.options]
    assert "pipeline_type" not in llm.options  # AUTO: the folder makes it VLM_CB

    server = start_server("--model_path", str(servable), "--model_name", "vlm")
    try:
        assert any("pipeline VLM_CB (" in line for line in server.output), server.output
        assert_answers(server, "vlm")
    finally:
        assert server.stop() == 0, "\n".join(server.output)

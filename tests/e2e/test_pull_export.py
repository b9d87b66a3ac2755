"""`ovserve --source_model ... --pull`: export a local Hugging Face folder into a model repository,
add it to config.json, list it, serve it, and get the tiny model's exact answers back."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import openai

from graphs.pbtxt import load_graph
from tests.helpers.server import ROOT, start_server
from tests.models import TINY_PROMPTS


def ovserve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "serving.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)


def test_pull_export_configure_serve(tiny_model_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "src" / "tiny-chat"
    shutil.copytree(tiny_model_dir / "hf", source)  # a plain HF folder: config.json, safetensors, tokenizer
    repo = tmp_path / "models"

    pulled = ovserve("--source_model", str(source), "--model_repository_path", str(repo), "--weight-format", "fp32", "--pull")
    assert pulled.returncode == 0, pulled.stderr
    for step in ("exporting", "converting tokenizer", "writing graph.pbtxt"):
        assert step in pulled.stderr, pulled.stderr
    servable = repo / "tiny-chat"
    for name in ("openvino_model.xml", "openvino_model.bin", "openvino_tokenizer.xml", "openvino_detokenizer.xml", "graph.pbtxt"):
        assert (servable / name).is_file(), name
    graph = load_graph(servable / "graph.pbtxt")
    (llm,) = [n for n in graph.nodes if n.calculator == "HttpLLMCalculator"]  # OVMS's one-node graph
    assert llm.options["models_path"] == "./"
    assert sorted(p.name for p in repo.iterdir()) == ["tiny-chat"]  # no half-built folder left

    again = ovserve("--source_model", str(source), "--model_repository_path", str(repo), "--pull")
    assert again.returncode == 0 and "reusing" in again.stderr and "exporting" not in again.stderr

    listed = ovserve("--list_models", "--model_repository_path", str(repo))
    assert listed.returncode == 0 and listed.stdout.split() == ["tiny-chat"], listed

    config = repo / "config.json"
    added = ovserve("--add_to_config", "--config_path", str(config), "--model_name", "tiny", "--model_path", "tiny-chat")
    assert added.returncode == 0, added.stderr
    assert json.loads(config.read_text()) == {"model_config_list": [{"config": {"name": "tiny", "base_path": "tiny-chat"}}]}

    bad = ovserve("--remove_from_config", "--config_path", str(config))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1

    server = start_server("--config_path", str(config))
    try:
        client = openai.OpenAI(base_url=f"{server.base_url}/v3", api_key="unused")
        for question, answer in TINY_PROMPTS.items():
            reply = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": question}], max_tokens=300)
            assert reply.choices[0].message.content == answer
    finally:
        assert server.stop() == 0, "\n".join(server.output)

    removed = ovserve("--remove_from_config", "--config_path", str(config), "--model_name", "tiny")
    assert removed.returncode == 0, removed.stderr
    assert json.loads(config.read_text())["model_config_list"] == []


def test_source_model_without_pull_serves_it(tiny_model_dir: Path, tmp_path: Path) -> None:
    """No --pull, no --config_path: prepared (here: an IR folder taken as is), then served alone."""
    source = tmp_path / "src" / "tiny-ir"
    shutil.copytree(tiny_model_dir, source, ignore=shutil.ignore_patterns("hf"))
    server = start_server("--source_model", str(source), "--model_repository_path", str(tmp_path / "models"), "--model_name", "tiny")
    try:
        client = openai.OpenAI(base_url=f"{server.base_url}/v3", api_key="unused")
        assert [m.id for m in client.models.list()] == ["tiny"]
        question, answer = next(iter(TINY_PROMPTS.items()))
        reply = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": question}], max_tokens=300)
        assert reply.choices[0].message.content == answer
    finally:
        assert server.stop() == 0, "\n".join(server.output)
    assert (tmp_path / "models" / "tiny" / "graph.pbtxt").is_file()


def test_hub_id_offline_fails_clearly(tmp_path: Path) -> None:
    """No hub here: only the offline failure of the download path is tested."""
    import os

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home")}
    result = ovserve("--source_model", "OpenVINO/not-cached-ov", "--model_repository_path", str(tmp_path / "models"), "--pull", env=env)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "cannot download OpenVINO/not-cached-ov (offline mode" in last
    assert not (tmp_path / "models" / "OpenVINO" / "not-cached-ov").exists()


def test_pull_embeddings_and_serve(tmp_path: Path) -> None:
    """--task embeddings: all-MiniLM-L6-v2's HF folder exported (feature-extraction, sentence-transformers
    pooling files copied), the stock embeddings graph written, the folder served through its graph."""
    import numpy as np

    from tests.models.minilm import source_model_dir, torch_embed

    repo = tmp_path / "models"
    args = ("--source_model", str(source_model_dir()), "--model_repository_path", str(repo), "--model_name", "minilm")
    pulled = ovserve(*args, "--task", "embeddings", "--pull", "--weight-format", "fp32")
    assert pulled.returncode == 0, pulled.stderr
    servable = repo / "minilm"
    for name in ("openvino_model.xml", "openvino_tokenizer.xml", "1_Pooling/config.json", "sentence_bert_config.json", "tokenizer.json"):
        assert (servable / name).is_file(), name
    (node,) = load_graph(servable / "graph.pbtxt").nodes
    assert node.calculator == "EmbeddingsCalculatorOV" and node.options["models_path"] == "./"
    assert sorted(p.name for p in repo.iterdir()) == ["minilm"]

    server = start_server("--model_path", str(servable), "--model_name", "emb")
    try:
        client = openai.OpenAI(base_url=f"{server.base_url}/v3", api_key="unused", max_retries=0)
        sentences = ["A man is playing a guitar.", "The stock market fell today."]
        reply = client.embeddings.create(model="emb", input=sentences, encoding_format="float")
        got = np.array([d.embedding for d in sorted(reply.data, key=lambda d: d.index)])
    finally:
        assert server.stop() == 0, "\n".join(server.output)
    assert got.shape == (2, 384)
    reference = np.array(torch_embed(source_model_dir(), sentences))
    cosines = (got * reference).sum(axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(reference, axis=1))
    assert cosines.min() > 1 - 1e-3

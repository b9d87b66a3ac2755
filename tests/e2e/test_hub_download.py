"""`ovserve --source_model ovserve/tiny --pull` downloading from a local fake Hugging Face Hub
(HF_ENDPOINT): the real CLI, the real huggingface_hub client, the tiny model's files."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.helpers.fake_hub import FakeHub, repo_from_folder, serve_hub
from tests.helpers.server import ROOT, start_server
from tests.models import TINY_PROMPTS

REPO_ID = "ovserve/tiny"
SERVABLE_FILES = ("openvino_model.xml", "openvino_model.bin", "openvino_tokenizer.xml", "openvino_detokenizer.xml", "graph.pbtxt")


@pytest.fixture
def hub(tiny_model_dir: Path) -> Iterator[FakeHub]:
    with serve_hub({REPO_ID: repo_from_folder(tiny_model_dir / "hf")}) as fake:
        yield fake


def pull(hub: FakeHub, hf_home: Path, repository: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=hub.endpoint, HF_HOME=str(hf_home), HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    command = ["--source_model", REPO_ID, "--model_repository_path", str(repository), "--pull", "--weight-format", "fp32"]
    return subprocess.run([sys.executable, "-m", "serving.cli", *command], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


def test_pull_from_hub_then_serve(hub: FakeHub, tmp_path: Path) -> None:
    repository = tmp_path / "models"
    result = pull(hub, tmp_path / "hf-home", repository)
    assert result.returncode == 0, result.stderr
    assert f"downloading {REPO_ID} from {hub.endpoint}" in result.stderr

    files = list(hub.repos[REPO_ID])
    assert hub.count("GET", f"/api/models/{REPO_ID}/revision/main") == 1
    assert hub.count("HEAD", f"/{REPO_ID}/resolve/") == len(files)
    assert hub.count("GET", f"/{REPO_ID}/resolve/") + hub.count("GET", "/cdn/") == len(files)
    assert hub.count("GET", "/cdn/") == 1  # model.safetensors, through the LFS redirect

    servable = repository / "ovserve" / "tiny"  # the Hugging Face id as given, as OVMS
    for name in SERVABLE_FILES:
        assert (servable / name).is_file(), name
    assert sorted(p.name for p in (repository / "ovserve").iterdir()) == ["tiny"]  # no half-built folder left

    server = start_server("--model_path", str(servable), "--model_name", "tiny")
    try:
        client = openai.OpenAI(base_url=f"{server.base_url}/v3", api_key="unused")
        question, answer = next(iter(TINY_PROMPTS.items()))
        reply = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": question}], max_tokens=300)
        assert reply.choices[0].message.content == answer
    finally:
        assert server.stop() == 0, "\n".join(server.output)


@pytest.mark.parametrize("fault", ["drop", "500"])
def test_interrupted_download_leaves_no_servable(hub: FakeHub, tmp_path: Path, fault: str) -> None:
    """The weights' download breaks: the connection drops half-way (and the retry meets a 500), or a
    plain 500. Exit 1 with one error line; nothing under the repository looks like a servable. Once
    the hub is back, the same pull succeeds and fetches only what is missing from the HF cache."""
    hub.faults["model.safetensors"] = fault
    repository = tmp_path / "models"
    hf_home = tmp_path / "hf-home"
    result = pull(hub, hf_home, repository)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ovserve: cannot download")]
    assert len(errors) == 1, result.stderr
    assert errors[0] == result.stderr.strip().splitlines()[-1]
    assert f"cannot download {REPO_ID}: " in errors[0] and "500" in errors[0], errors[0]
    assert hub.count("GET", "/cdn/") == (2 if fault == "drop" else 1)  # "drop": the first try and its resume
    assert not (repository / "ovserve" / "tiny").exists()
    assert not list(repository.rglob("graph.pbtxt"))  # (rglob of a missing folder: nothing)
    if fault == "drop":  # the retry is the same after either fault: run it (an export) once
        hub.heal()
        again = pull(hub, hf_home, repository)
        assert again.returncode == 0, again.stderr
        assert hub.count("GET", "/cdn/") == 1 and hub.count("GET", f"/{REPO_ID}/resolve/") == 0  # the small files were cached
        for name in SERVABLE_FILES:
            assert (repository / "ovserve" / "tiny" / name).is_file(), name

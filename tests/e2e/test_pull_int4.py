"""`--pull --weight-format int4` compresses as `optimum-cli export openvino --weight-format int4`
does: optimum-intel's per-model default config for a model it has one for, its generic default
otherwise. Read back from the IR's rt_info (NNCF records the compression it applied)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openvino as ov
import pytest
from optimum.intel.openvino.configuration import _DEFAULT_4BIT_WQ_CONFIG, get_default_quantization_config

from serving.repository.quantization import weight_quantization
from tests.helpers.fake_hub import FakeHub, repo_from_folder, serve_hub
from tests.helpers.server import ROOT

WITH_DEFAULT = "EleutherAI/gpt-j-6b"  # optimum-intel 2.2.0: int4 asym, group 64 (the tiny model's weights, renamed)
WITHOUT = "ovserve/tiny"


@pytest.fixture(scope="module")
def hub(tiny_model_dir: Path) -> Iterator[FakeHub]:
    files = repo_from_folder(tiny_model_dir / "hf")
    with serve_hub({WITH_DEFAULT: files, WITHOUT: files}) as fake:
        yield fake


def pull_int4(hub: FakeHub, repo_id: str, tmp_path: Path) -> tuple[Path, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=hub.endpoint, HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    repository = tmp_path / "models"
    command = ["--source_model", repo_id, "--model_repository_path", str(repository), "--pull", "--weight-format", "int4"]
    done = subprocess.run([sys.executable, "-m", "serving.cli", *command], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr
    return repository / repo_id, done.stderr


def compression(servable: Path) -> dict[str, str]:
    """NNCF's record of the weight compression it applied to the IR."""
    model = ov.Core().read_model(servable / "openvino_model.xml")
    keys = ("mode", "group_size", "ratio")
    return {key: model.get_rt_info(["nncf", "weight_compression", key]).astype(str) for key in keys}


def test_the_choice_follows_optimum_cli() -> None:
    assert weight_quantization("int4", [WITH_DEFAULT]) == (dict(get_default_quantization_config(WITH_DEFAULT, "int4") or {}), True)
    assert weight_quantization("int4", [WITHOUT]) == (dict(_DEFAULT_4BIT_WQ_CONFIG), False)
    assert weight_quantization("fp16", [WITH_DEFAULT]) is None


def test_a_model_with_a_default_gets_it(hub: FakeHub, tmp_path: Path) -> None:
    servable, log = pull_int4(hub, WITH_DEFAULT, tmp_path)
    assert f"optimum-intel's default for {WITH_DEFAULT}" in log
    assert compression(servable) == {"mode": "int4_asym", "group_size": "64", "ratio": "1.0"}


def test_a_model_without_gets_the_generic_default(hub: FakeHub, tmp_path: Path) -> None:
    servable, log = pull_int4(hub, WITHOUT, tmp_path)
    assert "optimum-intel's generic default" in log
    assert compression(servable) == {"mode": "int4_asym", "group_size": "128", "ratio": "1.0"}

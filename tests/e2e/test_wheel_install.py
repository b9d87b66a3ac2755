"""The wheel, installed with the runtime lock alone into a clean venv, serves a model.

These are the Dockerfile's install steps (runtime.lock with hashes, then the wheel with --no-deps),
run here where no image can be built. The venv is kept under .cache/wheel-venv/, one per
runtime.lock content, so only the first run downloads (or reads pip's cache); each run builds and
reinstalls the wheel. A lock file serializes concurrent runs on the shared venv.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.bench.server_process import Server, start_command
from tests.helpers.locks import normalize, read_lock
from tests.models import TINY_PROMPTS

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_LOCK = ROOT / "requirements" / "runtime.lock"
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check"]


def pip_into(venv: Path, *args: str) -> None:
    """Our pip, acting on `venv`'s interpreter (the venv itself has no pip, like a slim image)."""
    subprocess.run([*PIP, "--python", str(venv / "bin" / "python"), *args], check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def runtime_venv() -> Iterator[Path]:
    """A venv holding runtime.lock's packages only, built once per lock content; held exclusively."""
    digest = hashlib.sha256(RUNTIME_LOCK.read_bytes()).hexdigest()[:16]
    venv = ROOT / ".cache" / "wheel-venv" / digest
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / "lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        if not (venv / ".complete").is_file():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
            # No --no-deps: pip's hash mode then also proves the lock complete (an unlisted
            # dependency is an error).
            pip_into(venv, "install", "--quiet", "--require-hashes", "-r", str(RUNTIME_LOCK))
            (venv / ".complete").touch()
        yield venv


@pytest.fixture(scope="module")
def installed(runtime_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of the sources (as the Dockerfile copies them), installed --no-deps."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for package in ("graphs", "calculators", "serving"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([*PIP, "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(work / "dist"), str(source)], check=True)
    (wheel,) = (work / "dist").glob("ovserve-*.whl")
    pip_into(runtime_venv, "install", "--quiet", "--no-deps", "--force-reinstall", str(wheel))
    return runtime_venv


def test_the_venv_holds_the_runtime_lock_and_the_wheel_only(installed: Path, tmp_path: Path) -> None:
    listed = subprocess.run(
        [*PIP, "--python", str(installed / "bin" / "python"), "list", "--format=json"], check=True, capture_output=True, text=True
    )
    names = {normalize(entry["name"]) for entry in json.loads(listed.stdout)}
    assert names == set(read_lock(RUNTIME_LOCK)) | {"ovserve"}
    where = subprocess.run(
        [str(installed / "bin" / "python"), "-c", "import serving, graphs.stock; print(serving.__file__)"],
        cwd=tmp_path, env=clean_env(), check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(installed), "imported from the source tree, not the wheel"


def clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", "VIRTUAL_ENV"}} | {"PYTHONUNBUFFERED": "1"}


def start_installed(venv: Path, cwd: Path, *args: str) -> Server:
    """`ovserve` from the venv's console script, outside the source tree; returns once ready."""
    return start_command([str(venv / "bin" / "ovserve"), *args, "--rest_port", "0"], cwd, clean_env())


def test_the_installed_wheel_serves_the_tiny_model(installed: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    server = start_installed(installed, tmp_path, "--model_path", str(tiny_model_dir), "--model_name", "tiny")
    try:
        with urllib.request.urlopen(server.base_url + "/v2/health/live", timeout=30) as live:  # the image's HEALTHCHECK
            assert live.status == 200
        body = {"model": "tiny", "messages": [{"role": "user", "content": "What is the capital of France?"}], "max_tokens": 20}
        request = urllib.request.Request(
            server.base_url + "/v3/chat/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            reply = json.load(response)
        assert reply["choices"][0]["message"]["content"] == TINY_PROMPTS["What is the capital of France?"]
        for path in ("/console/", "/console/static/app.js", "/console/static/console.css"):  # the console is package data
            with urllib.request.urlopen(server.base_url + path, timeout=30) as page:
                assert page.status == 200 and page.read(), path
    finally:
        assert server.stop() == 0, "\n".join(server.output)

"""The llama.cpp peer (demos/benchmark/llama_peer.py, llama_server_setup.sh) without building it:
the recipe's syntax and pins, its no-op when built, and the server's command line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.bench_peers import BENCHMARK, load

peer = load("llama_peer")
SETUP = BENCHMARK / "llama_server_setup.sh"


def test_recipe_parses() -> None:
    subprocess.run(["bash", "-n", str(SETUP)], check=True)


def test_pin_is_a_version_and_a_sha256() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", peer.version())
    text = (BENCHMARK / "llama-server.version").read_text()
    assert re.search(r"^sha256=[0-9a-f]{64}$", text, re.M)


def test_recipe_turns_off_every_download_of_the_build() -> None:
    # The sdist is the only download: no web UI fetched at build time, no HTTPS client in the server.
    text = SETUP.read_text()
    for flag in ("-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_CURL=OFF"):
        assert flag in text
    assert "--target llama-server" in text


def test_cache_folder_follows_the_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLAMA_SERVER_CACHE", raising=False)
    assert peer.binary() == peer.ROOT / ".cache" / "llama-server" / peer.version() / "bin" / "llama-server"
    monkeypatch.setenv("LLAMA_SERVER_CACHE", str(tmp_path))
    assert peer.binary() == tmp_path / peer.version() / "bin" / "llama-server"
    assert peer.build_info() is None


def test_recipe_is_a_no_op_when_built(tmp_path: Path) -> None:
    # A binary that answers --version: the recipe neither downloads nor builds.
    fake = tmp_path / peer.version() / "bin" / "llama-server"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\necho 'version: 1 (fake)'\n")
    fake.chmod(0o755)
    env = {**os.environ, "LLAMA_SERVER_CACHE": str(tmp_path), "PYTHON": "/nonexistent/python"}
    done = subprocess.run(["bash", str(SETUP)], env=env, capture_output=True, text=True, timeout=30, check=True)
    assert done.stdout.strip() == f"llama-server ok: {fake}"


def test_command_line() -> None:
    cmd = peer.command("/m/model.gguf", 8200, ctx_size=8 * 4096, parallel=8, server="/bin/llama-server")
    assert cmd == [
        "/bin/llama-server",
        "--model", "/m/model.gguf",
        "--host", "127.0.0.1",
        "--port", "8200",
        "--ctx-size", "32768",
        "--parallel", "8",
        "--no-kv-unified",
        "--cont-batching",
    ]  # fmt: skip


def test_command_line_threads_and_extra() -> None:
    cmd = peer.command("m.gguf", 1, ctx_size=4096, parallel=1, threads=2, server="s", extra=["--metrics"])
    assert cmd[-5:] == ["--threads", "2", "--threads-batch", "2", "--metrics"]


@pytest.mark.parametrize(("ctx_size", "parallel"), [(4096, 0), (4095, 2), (1, 2)])
def test_context_must_split_evenly_among_slots(ctx_size: int, parallel: int) -> None:
    with pytest.raises(ValueError, match="multiple of parallel"):
        peer.command("m.gguf", 1, ctx_size=ctx_size, parallel=parallel)


def test_start_refuses_without_a_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMA_SERVER_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="llama_server_setup.sh"):
        peer.start("m.gguf", 1, ctx_size=4096, parallel=1)


def test_rss_and_stop() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; print(flush=True); time.sleep(60)"], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline()  # the interpreter is up
        assert 1 < peer.rss_mib(proc) < 1024
    finally:
        assert peer.stop(proc) == -signal.SIGTERM
        assert proc.stdout is not None
        proc.stdout.close()

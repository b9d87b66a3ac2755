"""Processes around a real server: pause a worker, stop a server mid-stream, run the CLI, read the server's log."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.helpers.server import ROOT, Server, start_server
from tests.helpers.stats import worker_stats


@contextlib.contextmanager
def paused(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def start_tiny(tiny_model_dir: Path, *extra: str) -> Server:
    return start_server("--model_path", str(tiny_model_dir), "--model_name", "tiny", *extra)


@contextlib.contextmanager
def stopping_server(tiny_model_dir: Path, *extra: str) -> Iterator[tuple[Server, int]]:
    """A server and its engine worker's pid; the worker is resumed and the server stopped after."""
    server = start_tiny(tiny_model_dir, *extra)
    worker = worker_stats(server)["pid"]
    try:
        yield server, worker
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGCONT)
        server.stop()


def serving_log(server: Server) -> list[str]:
    """The server's output up to its shutdown (what the load left behind, not how it stopped)."""
    end = next((i for i, line in enumerate(server.output) if "[ovserve] draining" in line), len(server.output))
    return server.output[:end]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "serving.cli", *args, "--rest_port", "0"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def run_server_expecting_exit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "serving.cli", *args, "--rest_port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

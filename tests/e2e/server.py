"""Start a real `ovserve` process on a free port for end-to-end tests, and stop it."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Guards against a hang only (a model that never loads); tests do not depend on it passing.
STARTUP_LIMIT_S = 300


@dataclass
class Server:
    process: subprocess.Popen[str]
    base_url: str  # http://127.0.0.1:PORT
    output: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        assert self.process.stdout is not None
        self.output.extend(self.process.stdout.read().splitlines())
        self.process.stdout.close()
        return self.process.returncode


def start_server(*args: str, wait_ready: bool = True) -> Server:
    """`ovserve ARGS --rest_port 0`; returns once it listens (and, by default, is ready)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "serving.cli", *args, "--rest_port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    output: list[str] = []
    base_url = ""
    deadline = time.monotonic() + STARTUP_LIMIT_S
    try:
        while time.monotonic() < deadline:
            if not selector.select(timeout=1.0):
                if process.poll() is not None:
                    break
                continue
            line = process.stdout.readline()
            if not line:
                break
            output.append(line.rstrip("\n"))
            if "REST listening on " in line:
                base_url = line.strip().rsplit(" ", 1)[1]
                if not wait_ready:
                    return Server(process, base_url, output)
            if line.strip() == "ovserve: ready":
                return Server(process, base_url, output)
    finally:
        selector.close()
    process.kill()
    process.wait()
    rest = process.stdout.read()
    process.stdout.close()
    raise RuntimeError("server did not become ready:\n" + "\n".join(output) + rest)

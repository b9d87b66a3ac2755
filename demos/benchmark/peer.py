"""Serve an ovserve model folder with the peer server openvino-openai-api 0.1.1, for benchmarks.

Standard library only, so any Python can drive it (the peer itself runs in its own venv made by
``peer_setup.sh``, default ``<repo>/.cache/peer-venv``, override with ``PEER_VENV``)::

    proc = peer.start(model_dir, port)          # prepares the model copy, waits until it answers
    ...  POST http://127.0.0.1:{port}/v1/chat/completions
    peer.stop(proc)

CLI: ``python demos/benchmark/peer.py serve MODEL_DIR PORT [--ignore-eos]`` (foreground, Ctrl-C
stops it), ``python demos/benchmark/peer.py prepare MODEL_DIR [--ignore-eos]`` (prints the copy).

The model copy lives in ``<repo>/.cache/peer-models/<folder name>[-ignore-eos]`` (see
``peer_prepare.py`` for what it changes); the source folder is never modified. ``ignore_eos=True``
makes every answer run to ``max_tokens``: the peer ignores the request's ``ignore_eos``, so this is
set server-wide in the copy's ``generation_config.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENV = Path(os.environ.get("PEER_VENV", ROOT / ".cache" / "peer-venv"))
MODELS = ROOT / ".cache" / "peer-models"
HOST = "127.0.0.1"
ROUTE = "/v1/chat/completions"


def setup() -> Path:
    """Make sure the peer's venv exists (idempotent); return its python."""
    subprocess.run(["bash", str(HERE / "peer_setup.sh")], check=True, stdout=sys.stderr)
    return VENV / "bin" / "python"


def prepare(model_dir: str | os.PathLike[str], ignore_eos: bool = False) -> Path:
    """Return the peer's copy of ``model_dir``, making it when missing or stale."""
    src = Path(model_dir).resolve()
    out = MODELS / (src.name + ("-ignore-eos" if ignore_eos else ""))
    record = out / "peer_prepared.json"
    if record.exists():
        done = json.loads(record.read_text())
        info = src / "build_info.json"
        src_hash = json.loads(info.read_text()).get("hash") if info.exists() else None
        if done.get("source") == str(src) and done.get("source_hash") == src_hash and src_hash is not None:
            return out
    python = setup()
    cmd = [str(python), str(HERE / "peer_prepare.py"), str(src), str(out)]
    if ignore_eos:
        cmd.append("--ignore-eos")
    subprocess.run(cmd, check=True, stdout=sys.stderr)
    return out


def start(
    model_dir: str | os.PathLike[str],
    port: int,
    *,
    ignore_eos: bool = False,
    timeout: float = 180.0,
    log: IO[bytes] | int | None = subprocess.DEVNULL,
) -> subprocess.Popen[bytes]:
    """Start the peer on 127.0.0.1:``port`` serving ``model_dir``; return once it answers HTTP."""
    copy = prepare(model_dir, ignore_eos=ignore_eos)
    python = VENV / "bin" / "python"
    cmd = [
        str(python), "-m", "openvino_openai_api.cli",
        "--model-path", str(copy), "--device", "CPU", "--host", HOST, "--port", str(port),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT if log is not None else None)
    # The peer has no health route; FastAPI's /openapi.json answers once uvicorn listens, which
    # is after the pipeline has loaded (create_app builds it before uvicorn.run).
    wait_ready(proc, cmd, f"http://{HOST}:{port}/openapi.json", timeout, "peer")
    return proc


def wait_ready(proc: subprocess.Popen[bytes], cmd: list[str], url: str, timeout: float, what: str) -> None:
    """Wait until `url` answers 200 (a server starting in `proc`); stop it and raise when it
    exits first or `timeout` passes. Shared with llama_peer.py."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before answering (cmd: {' '.join(cmd)})")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # not listening yet, or not ready (an HTTPError is a URLError)
        if time.monotonic() > deadline:
            stop(proc)
            raise TimeoutError(f"{what} did not answer {url} within {timeout:.0f} s")
        time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
    """Stop a peer started by :func:`start` (SIGTERM, then SIGKILL); return its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a model with openvino-openai-api 0.1.1.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_serve = sub.add_parser("serve", help="serve MODEL_DIR on 127.0.0.1:PORT in the foreground")
    p_serve.add_argument("model_dir")
    p_serve.add_argument("port", type=int)
    p_serve.add_argument("--ignore-eos", action="store_true", help="every answer runs to max_tokens")
    p_prep = sub.add_parser("prepare", help="make the peer's copy of MODEL_DIR and print its path")
    p_prep.add_argument("model_dir")
    p_prep.add_argument("--ignore-eos", action="store_true")
    args = parser.parse_args()
    if args.cmd == "prepare":
        print(prepare(args.model_dir, ignore_eos=args.ignore_eos))
        return
    # SIGTERM (e.g. from a supervisor killing this wrapper) stops the server too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    proc = start(args.model_dir, args.port, ignore_eos=args.ignore_eos, log=None)
    serve_in_foreground(proc, f"peer serving {args.model_dir} on http://{HOST}:{args.port}{ROUTE}")


def serve_in_foreground(proc: subprocess.Popen[bytes], what: str) -> None:
    """Wait for the started server until it exits or Ctrl-C, then stop it. Shared with llama_peer.py."""
    print(f"{what} (pid {proc.pid})", file=sys.stderr)
    try:
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop(proc)


if __name__ == "__main__":
    main()

"""Serve a GGUF file with llama.cpp's ``llama-server``, the second benchmark peer (issue 17).

Standard library only, so any Python can drive it. The binary is built once from the vendored
llama.cpp of the pinned llama-cpp-python sdist by ``llama_server_setup.sh`` (about 10 minutes on
2 cores) into ``<repo>/.cache/llama-server/<version>/bin/llama-server`` (root overridable with
``LLAMA_SERVER_CACHE``)::

    llama_peer.setup()                                        # builds once, then a no-op
    proc = llama_peer.start(gguf, 8200, ctx_size=8 * 4096, parallel=8)  # returns once /health is 200
    ...  POST http://127.0.0.1:8200/v1/chat/completions
    llama_peer.rss_mib(proc)
    llama_peer.stop(proc)

CLI: ``python demos/benchmark/llama_peer.py serve GGUF PORT --parallel N [--slot-ctx 4096]``
(foreground, Ctrl-C stops it); ``... command GGUF PORT --parallel N`` prints the command line.

Context: with ``--parallel N`` and a unified KV cache off (llama-server's default when N is given,
passed explicitly here) ``ctx_size`` is the total and each slot gets ``ctx_size / N`` tokens
(llama.cpp rounds a slot up to a multiple of 256), so pass ``ctx_size = N * per-slot context``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from peer import serve_in_foreground, stop, wait_ready  # noqa: F401  (stop: part of this driver's API, real_model.py calls it)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PIN = HERE / "llama-server.version"
HOST = "127.0.0.1"
ROUTE = "/v1/chat/completions"


def version() -> str:
    """The pinned llama-cpp-python version (``version=`` in llama-server.version)."""
    for line in PIN.read_text().splitlines():
        if line.startswith("version="):
            return line.split("=", 1)[1].strip()
    raise ValueError(f"no version= line in {PIN}")


def cache_dir() -> Path:
    """Where the build of the pinned version lives (binary, version.txt, build.json)."""
    root = Path(os.environ.get("LLAMA_SERVER_CACHE", ROOT / ".cache" / "llama-server"))
    return root / version()


def binary() -> Path:
    return cache_dir() / "bin" / "llama-server"


def build_info() -> dict[str, Any] | None:
    """What the setup wrote after building (build seconds, flags), or None when not built."""
    path = cache_dir() / "build.json"
    return json.loads(path.read_text()) if path.exists() else None


def setup(force: bool = False) -> Path:
    """Build llama-server when missing (idempotent; ~10 min the first time); return its path."""
    cmd = ["bash", str(HERE / "llama_server_setup.sh")] + (["--force"] if force else [])
    subprocess.run(cmd, check=True, stdout=sys.stderr)
    return binary()


def command(
    gguf_path: str | os.PathLike[str],
    port: int,
    *,
    ctx_size: int,
    parallel: int,
    threads: int | None = None,
    server: str | os.PathLike[str] | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """The llama-server command line: CPU, 127.0.0.1, ``parallel`` slots sharing ``ctx_size``."""
    if parallel < 1 or ctx_size < parallel or ctx_size % parallel:
        raise ValueError(f"ctx_size ({ctx_size}) must be a positive multiple of parallel ({parallel})")
    cmd = [
        str(server or binary()),
        "--model", str(gguf_path),
        "--host", HOST,
        "--port", str(port),
        "--ctx-size", str(ctx_size),
        "--parallel", str(parallel),
        # Each slot its own ctx_size / parallel (the default with an explicit --parallel, stated
        # so that the capacity does not depend on llama.cpp's choice).
        "--no-kv-unified",
        "--cont-batching",
    ]  # fmt: skip
    if threads is not None:
        # -t is for generation, -tb for prompt processing; one figure for both, like the engine.
        cmd += ["--threads", str(threads), "--threads-batch", str(threads)]
    return cmd + list(extra)


def start(
    gguf_path: str | os.PathLike[str],
    port: int,
    *,
    ctx_size: int,
    parallel: int,
    threads: int | None = None,
    timeout: float = 120.0,
    log: IO[bytes] | int | None = subprocess.DEVNULL,
    extra: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """Start llama-server on 127.0.0.1:``port``; return once ``/health`` answers 200.

    Does not build: call :func:`setup` first (raises FileNotFoundError when not built).
    """
    if not binary().is_file():
        raise FileNotFoundError(f"{binary()} not built: run demos/benchmark/llama_server_setup.sh")
    cmd = command(gguf_path, port, ctx_size=ctx_size, parallel=parallel, threads=threads, extra=extra)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT if log is not None else None)
    # /health is 503 while the model loads (and warms up), 200 once requests are served.
    wait_ready(proc, cmd, f"http://{HOST}:{port}/health", timeout, "llama-server")
    return proc


def rss_mib(proc: subprocess.Popen[bytes]) -> float:
    """Resident memory of the server in MiB (one process: no workers to add)."""
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no VmRSS for pid {proc.pid}")


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a GGUF file with llama.cpp's llama-server.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name, text in (("serve", "serve GGUF on 127.0.0.1:PORT in the foreground"), ("command", "print the command line")):
        p = sub.add_parser(name, help=text)
        p.add_argument("gguf")
        p.add_argument("port", type=int)
        p.add_argument("--parallel", type=int, default=1, help="slots (concurrent requests)")
        p.add_argument("--slot-ctx", type=int, default=4096, help="context per slot (tokens)")
        p.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    ctx_size = args.parallel * args.slot_ctx
    if args.cmd == "command":
        print(" ".join(command(args.gguf, args.port, ctx_size=ctx_size, parallel=args.parallel, threads=args.threads)))
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    setup()
    proc = start(args.gguf, args.port, ctx_size=ctx_size, parallel=args.parallel, threads=args.threads, log=None)
    serve_in_foreground(proc, f"llama-server serving {args.gguf} on http://{HOST}:{args.port}{ROUTE}")


if __name__ == "__main__":
    main()

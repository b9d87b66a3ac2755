"""Start a real `ovserve` process on a free port, wait until it is ready, and stop it.

Used by `ovserve bench --compare` (when no --base-url is given) and by the end-to-end tests.
The server's output is read all along (by a thread, once it is ready), so a chatty server never
blocks on a full pipe; it is kept in `Server.output`.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Guards against a hang only (a model that never loads).
STARTUP_LIMIT_S = 300


@dataclass
class Server:
    process: subprocess.Popen[str]
    base_url: str  # http://127.0.0.1:PORT
    output: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None
    _startup_lines: queue.Queue[str | None] | None = None

    grpc_address: str | None = None  # host:port, from the "gRPC listening on" line (with --port)

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    @property
    def grpc_port(self) -> int:
        assert self.grpc_address is not None, "the server was started without --port"
        return int(self.grpc_address.rsplit(":", 1)[1])

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line.rstrip("\n"))
            if (lines := self._startup_lines) is not None:
                lines.put(line)
        if (lines := self._startup_lines) is not None:
            lines.put(None)  # end of output

    def start_reading(self) -> queue.Queue[str | None]:
        """Read the output in a thread from now on; during start-up the lines also go to
        the returned queue (a thread, not select() + readline(): a buffered reader can hold a
        line that select() then never reports)."""
        self._startup_lines = queue.Queue()
        self._reader = threading.Thread(target=self._drain, name="ovserve-output", daemon=True)
        self._reader.start()
        return self._startup_lines

    def stop(self, timeout_s: float = 60) -> int:
        """SIGTERM, wait (kill after `timeout_s`), collect the rest of the output; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        assert self.process.stdout is not None
        if self._reader is not None:
            self._reader.join()
        else:
            self.output.extend(self.process.stdout.read().splitlines())
        self.process.stdout.close()
        return self.process.returncode


def _descendants(pid: int, parents: dict[int, int]) -> set[int]:
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent and child not in tree]
        tree.update(children)
        frontier.extend(children)
    return tree


def _proc_tree(pid: int, value: Callable[[int, list[str]], float]) -> tuple[float, float] | None:
    """`value(pid, fields)` (fields: /proc/PID/stat's after the command name) for a process, and
    summed over all its descendants (e.g. the engine workers); None where there is no /proc."""
    proc = Path("/proc")
    if not (proc / str(pid) / "stat").is_file():
        return None
    parents: dict[int, int] = {}
    stats: dict[int, list[str]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        parents[int(entry.name)] = int(fields[1])
        stats[int(entry.name)] = fields
    values = {p: value(p, stats[p]) for p in _descendants(pid, parents) if p in stats}
    return values.get(pid, 0.0), sum(v for p, v in values.items() if p != pid)


def process_tree_rss(pid: int) -> dict[str, int] | None:
    """Resident memory in bytes of a process (`main`) and of all its descendants (`children`,
    e.g. the engine workers), read from /proc; None where there is no /proc."""
    page = os.sysconf("SC_PAGE_SIZE")
    found = _proc_tree(pid, lambda _, fields: int(fields[21]) * page)  # field 24 of stat: rss in pages
    return None if found is None else {"main": int(found[0]), "children": int(found[1])}


def pss_bytes(pid: int) -> int:
    """Proportional set size of one process in bytes (/proc/PID/smaps_rollup): its resident pages,
    each page shared with other processes counted in proportion. Summed over a server and its
    workers it counts the OpenVINO libraries both map once, where a sum of RSS counts them twice."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass  # gone meanwhile (or no smaps_rollup: kernels before 4.14)
    return 0


def process_tree_pss(pid: int) -> dict[str, int] | None:
    """Like process_tree_rss, in proportional set size (pss_bytes); None where there is no /proc."""
    found = _proc_tree(pid, lambda p, _: pss_bytes(p))
    return None if found is None else {"main": int(found[0]), "children": int(found[1])}


def process_tree_cpu(pid: int) -> dict[str, float] | None:
    """CPU seconds (user + system) of a process (`main`) and of all its descendants (`children`,
    e.g. the engine workers), read from /proc; None where there is no /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = _proc_tree(pid, lambda _, fields: (int(fields[11]) + int(fields[12])) / ticks)
    return None if found is None else {"main": found[0], "children": found[1]}


def start_server(*args: str, wait_ready: bool = True, env: Mapping[str, str] | None = None) -> Server:
    """`ovserve ARGS --rest_port 0`; returns once it listens (and, by default, is ready).
    `env`: variables to set on top of this process's environment."""
    command = [sys.executable, "-m", "serving.cli", *args, "--rest_port", "0"]
    return start_command(command, PROJECT_ROOT, {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}, wait_ready)


def start_command(command: Sequence[str], cwd: Path, env: Mapping[str, str], wait_ready: bool = True) -> Server:
    """An ovserve command line (ending in `--rest_port 0`) started in `cwd` with exactly `env`;
    returns once it listens (and, by default, is ready), or raises RuntimeError with its output."""
    process = subprocess.Popen(list(command), cwd=cwd, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    server = Server(process, "")
    lines = server.start_reading()
    deadline = time.monotonic() + STARTUP_LIMIT_S
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:  # the process ended
            break
        if "REST listening on " in line:
            server.base_url = line.strip().rsplit(" ", 1)[1]
            if not wait_ready:
                server._startup_lines = None
                return server
        if "gRPC listening on " in line:
            server.grpc_address = line.strip().rsplit(" ", 1)[1]
        if line.strip() == "ovserve: ready":
            server._startup_lines = None
            return server
    process.kill()
    process.wait()
    if server._reader is not None:
        server._reader.join()
    raise RuntimeError("server did not become ready:\n" + "\n".join(server.output))


def wait_for(predicate: Callable[[], object], what: str, limit_s: float = 120) -> None:
    """Poll `predicate` until it holds; fail naming `what` after `limit_s` (a hang guard only)."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)

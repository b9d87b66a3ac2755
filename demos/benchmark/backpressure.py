"""Clients that never read their streams: server memory before, during and after (issue 23, 5).

Starts a server on the tiny model (extra server flags after `--`), then runs each scenario with
raw sockets that send their requests and never read, and prints the VmRSS of the server and of
its engine worker (from /proc/PID/status) before, at the peak while the clients hold their
sockets, and after they closed them; plus the engine's cancelled/finished counts.

  issue     --clients N requests each: n=20, max_tokens 480, ignore_eos (the issue's scenario;
            genai delivers sampled n>1 output only when it ends, as one packet per request)
  pipelined --clients N connections each with 40 streaming n=1 logprobs requests pipelined:
            enough output to fill loopback's socket buffers, so that a stream keeps producing
            into a client that does not read (what --max_unsent_bytes bounds)

    .venv/bin/python demos/benchmark/backpressure.py --clients 4 [-- --max_unsent_bytes 65536]
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from serving.bench.server_process import Server, start_server  # noqa: E402
from tests.models import build_tiny_model  # noqa: E402

PROMPT = [{"role": "user", "content": "Tell me a story."}]
ISSUE = {"model": "tiny", "messages": PROMPT, "stream": True, "max_tokens": 480, "ignore_eos": True, "n": 20, "temperature": 1.0}
STREAM = {"model": "tiny", "messages": PROMPT, "stream": True, "max_tokens": 480, "ignore_eos": True, "logprobs": True}
PIPELINED = 40
SETTLE_LIMIT_S = 300  # a hang guard only


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def engine(server: Server) -> dict[str, Any]:
    with urllib.request.urlopen(server.base_url + "/debug/stats", timeout=60) as response:
        return json.load(response)["servables"]["tiny"]["resources"]["llm"]  # type: ignore[no-any-return]


def request_bytes(body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    head = f"POST /v3/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    return head.encode() + data


def snapshot(server: Server, worker: int) -> str:
    stats = engine(server)
    return (
        f"server {rss_mib(server.process.pid):6.1f} MiB, worker {rss_mib(worker):6.1f} MiB; engine running {stats.get('running', 0)}, "
        f"finished {stats.get('finished', 0)}, cancelled {stats.get('cancelled', 0)}"
    )


def run(server: Server, scenario: str, clients: int) -> None:
    worker = engine(server)["pid"]
    print(f"{scenario}: before  {snapshot(server, worker)}")
    payload = request_bytes(ISSUE) if scenario == "issue" else request_bytes(STREAM) * PIPELINED
    sockets = []
    for _ in range(clients):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(payload)
        sockets.append(sock)
    peak = [0.0, 0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0], peak[1] = max(peak[0], rss_mib(server.process.pid)), max(peak[1], rss_mib(worker))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    deadline = time.monotonic() + SETTLE_LIMIT_S
    idle_since = None
    while time.monotonic() < deadline:  # until the engine has been idle for a second
        stats = engine(server)
        busy = stats.get("running", 0) or stats["active_requests"]
        idle_since = None if busy else (idle_since or time.monotonic())
        if idle_since is not None and time.monotonic() - idle_since > 1.0:
            break
        time.sleep(0.1)
    print(f"{scenario}: held    {snapshot(server, worker)} (peak server {peak[0]:.1f}, worker {peak[1]:.1f})")
    done.set()
    sampler.join()
    for sock in sockets:
        sock.close()
    time.sleep(1.0)  # let the server see the closes
    print(f"{scenario}: closed  {snapshot(server, worker)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--scenario", choices=["issue", "pipelined", "both"], default="both")
    args, server_flags = parser.parse_known_args()
    server_flags = [f for f in server_flags if f != "--"]
    server = start_server("--model_path", str(build_tiny_model()), "--model_name", "tiny", *server_flags)
    try:
        for scenario in ("issue", "pipelined") if args.scenario == "both" else (args.scenario,):
            run(server, scenario, args.clients)
    finally:
        server.stop()


if __name__ == "__main__":
    main()

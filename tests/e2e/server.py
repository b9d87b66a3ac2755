"""Start a real `ovserve` process on a free port for end-to-end tests, and stop it.

The code lives in serving/bench/server_process.py (`ovserve bench --compare` starts servers too).
"""

from __future__ import annotations

from serving.bench.server_process import PROJECT_ROOT as ROOT
from serving.bench.server_process import STARTUP_LIMIT_S, Server, start_server, wait_for

__all__ = ["ROOT", "STARTUP_LIMIT_S", "Server", "start_server", "wait_for"]

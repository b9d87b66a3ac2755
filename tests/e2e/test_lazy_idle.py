"""Lazy servables load on their first request; idle ones unload (their engine process ends,
so its memory returns) and load again on the next request. ovserve's own config keys."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers.json_api import ask, get
from tests.helpers.servables import ovms_servable
from tests.helpers.server import Server, start_server, wait_for
from tests.models import TINY_PROMPTS


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("lazy")
    ovms_servable(root / "eager", tiny_model_dir)
    ovms_servable(root / "lazy", tiny_model_dir)
    config = {
        "model_config_list": [
            {"config": {"name": "eager", "base_path": "eager"}},
            {"config": {"name": "lazy", "base_path": "lazy", "lazy_load": True, "idle_unload_seconds": 0.5}},
        ]
    }
    (root / "config.json").write_text(json.dumps(config))
    srv = start_server("--config_path", str(root / "config.json"), "--file_system_poll_wait_seconds", "0")
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


def state(server: Server, name: str) -> dict[str, object]:
    return get(server, "/debug/stats")[1]["servables"][name]  # type: ignore[no-any-return]


def engine_processes(server: Server) -> int:
    """Live engine worker processes (not the resource tracker; an ended one not yet reaped
    by the server is a zombie and counts as gone)."""
    count = 0
    for child in psutil.Process(server.process.pid).children(recursive=True):
        try:
            count += "spawn_main" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
    return count


def test_lazy_loads_on_first_request_and_unloads_when_idle(server: Server) -> None:
    assert state(server, "lazy")["state"] == "idle" and state(server, "lazy")["resources"] == {}
    assert sorted(m["id"] for m in get(server, "/v3/models")[1]["data"]) == ["eager", "lazy"]
    assert get(server, "/v2/health/ready")[0] == 200
    assert engine_processes(server) == 1  # only the eager one's engine
    # it loads for the request (its answer proves it; it may be idle again by the next look)
    assert ask(server, "lazy", "Say this is a test") == TINY_PROMPTS["Say this is a test"]
    # after 0.5 s without requests its engine process ends
    wait_for(lambda: state(server, "lazy")["state"] == "idle", "the lazy servable unloads when idle")
    wait_for(lambda: engine_processes(server) == 1, "its engine process ends")
    assert state(server, "eager")["state"] == "available"  # no idle_unload_seconds: stays
    # and the next request loads it again
    assert ask(server, "lazy", "Count to five.") == TINY_PROMPTS["Count to five."]

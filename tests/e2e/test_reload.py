"""Live config reload on a real server: add, change and remove servables while requests are in
flight (none is lost), a broken config refused (the old one keeps serving), and polling."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.json_api import ask, get, post
from tests.helpers.servables import OVMS_GRAPH, ovms_servable
from tests.helpers.server import Server, start_server
from tests.models import TINY_PROMPTS

STORY = "Tell me a story."


class StreamInFlight(threading.Thread):
    """Streams the long answer; `started` is set once the first bytes arrived."""

    def __init__(self, server: Server, model: str) -> None:
        super().__init__(daemon=True)
        self.server, self.model = server, model
        self.started = threading.Event()
        self.text = ""
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=300)
            body = {"model": self.model, "stream": True, "messages": [{"role": "user", "content": STORY}]}
            conn.request("POST", "/v3/chat/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            raw = b""
            while chunk := response.read1(65536):
                raw += chunk
                self.started.set()
            conn.close()
            events = [json.loads(e[6:]) for e in raw.decode().split("\n\n") if e.startswith("data: {")]
            self.text = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.started.set()


def write_config(root: Path, names: list[str]) -> None:
    config = {"model_config_list": [{"config": {"name": n, "base_path": n}} for n in names]}
    tmp = root / "config.json.tmp"
    tmp.write_text(json.dumps(config))
    tmp.replace(root / "config.json")


@pytest.fixture(scope="module")
def repo(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reload")
    for name in ("a", "b"):
        ovms_servable(root / name, tiny_model_dir)
    write_config(root, ["a"])
    return root


@pytest.fixture(scope="module")
def server(repo: Path) -> Iterator[Server]:
    srv = start_server("--config_path", str(repo / "config.json"), "--file_system_poll_wait_seconds", "0", "--enable_config_api")
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


def models(server: Server) -> list[str]:
    return sorted(m["id"] for m in get(server, "/v3/models")[1]["data"])


def test_config_status_in_ovms_shape(server: Server) -> None:
    status, body = get(server, "/v1/config")
    assert status == 200
    assert body["a"]["model_version_status"][0]["state"] == "AVAILABLE"
    assert body["a"]["model_version_status"][0]["status"]["error_code"] == "OK"


def test_add_change_remove_while_streaming(server: Server, repo: Path) -> None:
    answer = TINY_PROMPTS[STORY]
    # add b while a request streams on a
    stream = StreamInFlight(server, "a")
    stream.start()
    assert stream.started.wait(120)
    write_config(repo, ["a", "b"])
    status, body = post(server, "/v1/config/reload")
    assert status == 200, body
    assert set(body) == {"a", "b"}
    stream.join(300)
    assert stream.error is None and stream.text == answer
    assert models(server) == ["a", "b"]
    assert ask(server, "b", "Say this is a test") == TINY_PROMPTS["Say this is a test"]
    # change a (its graph) while a request streams on it: the old engine finishes it
    stream = StreamInFlight(server, "a")
    stream.start()
    assert stream.started.wait(120)
    (repo / "a" / "graph.pbtxt").write_text(OVMS_GRAPH.replace("max_num_seqs: 256", "max_num_seqs: 64"))
    assert post(server, "/v1/config/reload")[0] == 200
    stream.join(300)
    assert stream.error is None and stream.text == answer
    assert ask(server, "a", "Say this is a test") == TINY_PROMPTS["Say this is a test"]
    # remove b
    write_config(repo, ["a"])
    assert post(server, "/v1/config/reload")[0] == 200
    assert models(server) == ["a"]
    status, body = post(server, "/v3/chat/completions", {"model": "b", "messages": [{"role": "user", "content": "hi"}]})
    assert status == 404


def test_broken_config_keeps_the_old_one(server: Server, repo: Path) -> None:
    before = get(server, "/v1/config")[1]
    (repo / "config.json").write_text('{"model_config_list": [{"config": {"name": "a", "base_path": "a", "colour": 1}}]}')
    status, body = post(server, "/v1/config/reload")
    assert status == 400 and "colour" in body["error"]["message"]
    assert get(server, "/v1/config")[1] == before
    assert ask(server, "a", "Say this is a test") == TINY_PROMPTS["Say this is a test"]
    (repo / "b" / "graph.pbtxt").write_text(OVMS_GRAPH.replace('"HttpLLMCalculator"', '"NoSuchCalculator"'))
    write_config(repo, ["a", "b"])
    status, body = post(server, "/v1/config/reload")
    assert status == 400 and "NoSuchCalculator" in body["error"]["message"]
    assert models(server) == ["a"]  # not half-applied
    write_config(repo, ["a"])


def test_polling_picks_up_changes(tiny_model_dir: Path, tmp_path: Path) -> None:
    ovms_servable(tmp_path / "a", tiny_model_dir)
    ovms_servable(tmp_path / "c", tiny_model_dir)
    write_config(tmp_path, ["a"])
    srv = start_server("--config_path", str(tmp_path / "config.json"), "--file_system_poll_wait_seconds", "0.2")
    try:
        write_config(tmp_path, ["a", "c"])
        deadline = time.monotonic() + 120  # a hang guard; the change shows within a poll plus a load
        while models(srv) != ["a", "c"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert models(srv) == ["a", "c"]
        assert ask(srv, "c", "Say this is a test") == TINY_PROMPTS["Say this is a test"]
    finally:
        assert srv.stop() == 0

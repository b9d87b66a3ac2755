"""API keys: every route but the open ones (health and metrics by default) needs
`Authorization: Bearer <key>` (401 in OpenAI's shape otherwise); the open prefixes are
configurable; the openai SDK's api_key just works."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.helpers.http import assert_openai_error
from tests.helpers.server import ROOT, Server, start_server
from tests.models import TINY_PROMPTS

KEY = "sk-test-0123456789"


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    key_file = tmp_path_factory.mktemp("auth") / "key.txt"
    key_file.write_text(KEY + "\n")
    srv = start_server(
        "--model_path",
        str(tiny_model_dir),
        "--model_name",
        "tiny",
        "--api_key_file",
        str(key_file),
        "--metrics_enable",
        "--enable_config_api",
    )
    yield srv
    assert srv.stop() == 0
    assert KEY not in "\n".join(srv.output)  # never logged


def request(server: Server, method: str, path: str, key: str | None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key is not None else {})}
    body = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "Say this is a test"}]}) if method == "POST" else None
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize(
    "path", ["/v3/models", "/v1/models", "/v1/config", "/debug/stats", "/v2", "/v2/models/tiny", "/v2/models/tiny/ready"]
)
@pytest.mark.parametrize("key", [None, "wrong", KEY + "x", ""])
def test_protected_routes_refuse_without_the_key(server: Server, path: str, key: str | None) -> None:
    status, body = request(server, "GET", path, key)
    error = assert_openai_error(status, body, 401)
    assert error["type"] == "authentication_error"


def test_the_right_key_and_open_health(server: Server) -> None:
    assert request(server, "GET", "/v3/models", KEY)[0] == 200
    assert request(server, "POST", "/v3/chat/completions", None)[0] == 401
    assert request(server, "GET", "/v2/health/live", None)[0] == 200
    assert request(server, "GET", "/v2/health/ready", None)[0] == 200
    assert request(server, "GET", "/metrics", None)[0] == 200
    assert request(server, "GET", "/v2/models/tiny", KEY)[0] == 200
    with openai.OpenAI(base_url=server.base_url + "/v3", api_key=KEY, max_retries=0) as client:
        reply = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "Say this is a test"}])
        assert reply.choices[0].message.content == TINY_PROMPTS["Say this is a test"]
    with (
        openai.OpenAI(base_url=server.base_url + "/v3", api_key="nope", max_retries=0) as client,
        pytest.raises(openai.AuthenticationError),
    ):
        client.models.list()


def test_unreadable_key_file_is_exit_2(tmp_path: Path, tiny_model_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "serving.cli", "--model_path", str(tiny_model_dir), "--api_key_file", str(tmp_path / "missing")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "api_key_file" in result.stderr.strip().splitlines()[-1]


def test_open_paths_are_configurable(tiny_model_dir: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "key.txt"
    key_file.write_text(KEY)
    srv = start_server(
        "--model_path", str(tiny_model_dir), "--model_name", "tiny", "--api_key_file", str(key_file),
        "--metrics_enable", "--api_key_open_paths", "/v2/health/live",
    )  # fmt: skip
    try:
        assert request(srv, "GET", "/v2/health/live", None)[0] == 200
        for path in ("/metrics", "/v2/health/ready"):
            status, body = request(srv, "GET", path, None)
            assert_openai_error(status, body, 401)
            assert request(srv, "GET", path, KEY)[0] == 200
    finally:
        assert srv.stop() == 0

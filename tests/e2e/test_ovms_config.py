"""OVMS's config.json and graph.pbtxt, unchanged, on a real server; bad configs refused clearly."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.helpers.processes import run_server_expecting_exit
from tests.helpers.servables import OVMS_GRAPH, ovms_servable
from tests.helpers.server import Server, start_server
from tests.models import TINY_PROMPTS


@pytest.fixture(scope="module")
def ovms_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("ovms")
    ovms_servable(root / "models" / "chat", tiny_model_dir)
    ovms_servable(root / "models" / "legacy", tiny_model_dir)
    config = {
        "model_config_list": [{"config": {"name": "chat", "base_path": "models/chat"}}],
        "mediapipe_config_list": [{"name": "legacy", "base_path": "models/legacy"}],
    }
    (root / "config.json").write_text(json.dumps(config))
    srv = start_server("--config_path", str(root / "config.json"))
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


def test_ovms_graphs_serve_unchanged(ovms_server: Server) -> None:
    with openai.OpenAI(base_url=ovms_server.base_url + "/v3", api_key="x", max_retries=0) as client:
        assert sorted(m.id for m in client.models.list().data) == ["chat", "legacy"]
        for model in ("chat", "legacy"):
            reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Say this is a test"}])
            assert reply.choices[0].message.content == TINY_PROMPTS["Say this is a test"]
            assert reply.model == model
        stream = client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "Count to five."}], stream=True, stop=", three"
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "One, two"


def test_invalid_graph_never_serves(tmp_path: Path, tiny_model_dir: Path) -> None:
    bad = OVMS_GRAPH.replace('calculator: "HttpLLMCalculator"', 'calculator: "HttpLLMCalculatr"').replace(
        "max_num_seqs: 256", "max_num_seqs: 0"
    )
    ovms_servable(tmp_path / "m", tiny_model_dir, bad)
    result = run_server_expecting_exit("--model_path", str(tmp_path / "m"))
    assert result.returncode == 2
    assert "HttpLLMCalculatr" in result.stderr and "HttpLLMCalculator" in result.stderr  # names it, suggests the fix
    result = run_server_expecting_exit("--model_path", str(tmp_path / "m"))
    ovms_servable(
        tmp_path / "n",
        tiny_model_dir,
        OVMS_GRAPH.replace("max_num_seqs: 256", "max_num_seqs: 0").replace(
            '"HTTP_RESPONSE_PAYLOAD:output"\n\n', '"HTTP_RESPONSE_PAYLOAD:nowhere"\n\n'
        ),
    )
    result = run_server_expecting_exit("--model_path", str(tmp_path / "n"))
    assert result.returncode == 2
    assert "max_num_seqs" in result.stderr and "nowhere" in result.stderr  # every problem at once
    assert "REST listening" not in result.stdout


def test_unknown_config_key_is_named(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_config_list": [{"config": {"name": "a", "base_path": "a", "colour": 1}}]}))
    result = run_server_expecting_exit("--config_path", str(tmp_path / "config.json"))
    assert result.returncode == 2
    assert "colour" in result.stderr


def test_one_bad_servable_among_several(tmp_path: Path, tiny_model_dir: Path) -> None:
    ovms_servable(tmp_path / "good", tiny_model_dir)
    ovms_servable(
        tmp_path / "bad", tiny_model_dir, OVMS_GRAPH.replace('"HTTP_RESPONSE_PAYLOAD:output"\n\n', '"HTTP_RESPONSE_PAYLOAD:nowhere"\n\n')
    )
    config = {"model_config_list": [{"config": {"name": n, "base_path": n}} for n in ("good", "bad")]}
    (tmp_path / "config.json").write_text(json.dumps(config))
    srv = start_server("--config_path", str(tmp_path / "config.json"))
    try:
        log = "\n".join(srv.output)
        assert "not serving this graph" in log and "nowhere" in log, log
        with openai.OpenAI(base_url=srv.base_url + "/v3", api_key="x", max_retries=0) as client:
            assert [m.id for m in client.models.list().data] == ["good"]
            with pytest.raises(openai.NotFoundError):
                client.chat.completions.create(model="bad", messages=[{"role": "user", "content": "hi"}])
    finally:
        assert srv.stop() == 0

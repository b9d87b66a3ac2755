"""OVMS's config.json and graph.pbtxt, unchanged, on a real server; bad configs refused clearly."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from serving.model_builder import TINY_PROMPTS
from tests.e2e.server import ROOT, Server, start_server

# As OVMS's export tool writes it for a plain text-generation model (models_path "./": the
# model files sit beside graph.pbtxt).
OVMS_GRAPH = """# File created with: OpenVINO Model Server 2026.0.0
# OVMS_GRAPH_QUEUE_MAX_SIZE: 8
input_stream: "HTTP_REQUEST_PAYLOAD:input"
output_stream: "HTTP_RESPONSE_PAYLOAD:output"

node: {
  name: "LLMExecutor"
  calculator: "HttpLLMCalculator"
  input_stream: "LOOPBACK:loopback"
  input_stream: "HTTP_REQUEST_PAYLOAD:input"
  input_side_packet: "LLM_NODE_RESOURCES:llm"
  output_stream: "LOOPBACK:loopback"
  output_stream: "HTTP_RESPONSE_PAYLOAD:output"
  input_stream_info: {
    tag_index: 'LOOPBACK:0',
    back_edge: true
  }
  node_options: {
      [type.googleapis.com / mediapipe.LLMCalculatorOptions]: {
          models_path: "./",
          plugin_config: '{ }',
          enable_prefix_caching: false,
          cache_size: 1,
          max_num_seqs: 256,
          device: "CPU",
      }
  }
  input_stream_handler {
    input_stream_handler: "SyncSetInputStreamHandler",
    options {
      [mediapipe.SyncSetInputStreamHandlerOptions.ext] {
        sync_set {
          tag_index: "LOOPBACK:0"
        }
      }
    }
  }
}
"""


def ovms_servable(folder: Path, model_dir: Path, graph: str = OVMS_GRAPH) -> None:
    """An OVMS servable folder: the model's files (linked) plus graph.pbtxt."""
    folder.mkdir(parents=True)
    for item in model_dir.iterdir():
        (folder / item.name).symlink_to(item)
    (folder / "graph.pbtxt").write_text(graph)


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


def run_server_expecting_exit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "serving.cli", *args, "--rest_port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


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

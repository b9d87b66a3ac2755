"""OVMS flag names on the real CLI: what they change, and one clear line + exit 2 when wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import openai
import pytest

from tests.helpers.server import ROOT, start_server
from tests.models import TINY_PROMPTS


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "serving.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ovms_flags_take_effect(tiny_model_dir: Path, tmp_path: Path) -> None:
    log_file, cache = tmp_path / "ovserve.log", tmp_path / "ov-cache"
    srv = start_server(
        "--model_path", str(tiny_model_dir), "--model_name", "tiny",
        "--kv_cache_precision", "u8", "--cache_dir", str(cache), "--log_path", str(log_file),
        "--port", "0", "--rest_workers", "4", "--pipeline_type", "AUTO", "--log_level", "DEBUG",
        "--max_prompt_tokens", "20",
    )  # fmt: skip
    try:
        with openai.OpenAI(base_url=srv.base_url + "/v3", api_key="x", max_retries=0) as client:
            reply = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "Say this is a test"}])
            assert reply.choices[0].message.content == TINY_PROMPTS["Say this is a test"]
            with pytest.raises(openai.BadRequestError) as refused:  # 21 tokens and more
                client.completions.create(model="tiny", prompt="word " * 40, max_tokens=2)
            assert refused.value.code == "context_length_exceeded" and "max_prompt_tokens" in refused.value.message
    finally:
        assert srv.stop() == 0
    output = "\n".join(srv.output)
    assert srv.grpc_address is not None and f"ovserve: gRPC listening on {srv.grpc_address}" in output
    assert "--rest_workers is accepted for OVMS compatibility" in output
    assert "servable tiny is available" in log_file.read_text()
    assert any(cache.iterdir())  # OpenVINO compiled the model into the cache folder


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--rest_port", "70000", "--model_path", "x"], "port must be 0-65535"),
        (["--model_path", "x", "--enable_prefix_caching", "maybe"], "expected true or false"),
        (["--model_path", "x", "--kv_cache_precision", "q9"], "invalid choice"),
        (["--log_level", "LOUD", "--model_path", "x"], "invalid choice"),
        (["--no_such_flag"], "unrecognized arguments"),
        ([], "give exactly one of --config_path or --model_path"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(args: list[str], says: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert says in last


def test_plugin_config_must_be_json(tiny_model_dir: Path) -> None:
    result = run_cli("--model_path", str(tiny_model_dir), "--plugin_config", "{nope", "--kv_cache_precision", "u8", "--rest_port", "0")
    assert result.returncode == 2 and "ovserve:" in result.stderr

"""Devices and plugin_config on real servers: a device this machine lacks fails the servable's
load with a message naming the devices that are there (log, exit code, /v1/config); AUTO and
HETERO:CPU load and answer; plugin_config reaches OpenVINO, and a key it does not know is named."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import openvino as ov
import pytest

from calculators.llm.options import LLMOptions
from calculators.llm.prompt_policy import npu_prompt_limit
from calculators.llm.resource import check_device
from graphs.errors import UnavailableError
from tests.helpers.http import get
from tests.helpers.processes import run_cli
from tests.helpers.servables import llm_graph, write_config
from tests.helpers.server import start_server
from tests.models import TINY_PROMPTS

PROMPT = "Say this is a test"
AVAILABLE = ov.Core().available_devices


def answers(*args: str) -> list[str]:
    """Start a single-model server with these flags, ask the tiny model one question, stop it."""
    srv = start_server("--model_name", "tiny", *args)
    try:
        with openai.OpenAI(base_url=srv.base_url + "/v3", api_key="x", max_retries=0) as client:
            reply = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": PROMPT}])
            assert reply.choices[0].message.content == TINY_PROMPTS[PROMPT]
    finally:
        assert srv.stop() == 0
    return srv.output


@pytest.mark.parametrize("device", ["GPU", "NPU", "GPU.1"])
def test_missing_device_fails_the_load_naming_what_is_there(tiny_model_dir: Path, device: str) -> None:
    if device in AVAILABLE:
        pytest.skip(f"{device} is on this machine")
    result = run_cli("--model_path", str(tiny_model_dir), "--model_name", "tiny", "--target_device", device)
    assert result.returncode == 1, result.stderr
    output = result.stdout + result.stderr
    expected = f"device {device!r} is not available here; available devices: {', '.join(AVAILABLE)}"
    assert any("servable tiny failed to load" in line and expected in line for line in output.splitlines()), output
    assert "no servable could be loaded" in output


def test_missing_device_state_in_v1_config(tiny_model_dir: Path, tmp_path: Path) -> None:
    gpu_graph = llm_graph(tiny_model_dir).replace('device: "CPU"', 'device: "GPU"')
    config = write_config(tmp_path, {"good": llm_graph(tiny_model_dir), "gpu": gpu_graph})
    if "GPU" in AVAILABLE:
        pytest.skip("GPU is on this machine")
    srv = start_server("--config_path", str(config), "--enable_config_api")
    try:
        status, body = get(srv, "/v1/config")
        assert status == 200
        state = json.loads(body)
        assert state["good"]["model_version_status"][0]["status"]["error_code"] == "OK"
        failed = state["gpu"]["model_version_status"][0]["status"]
        assert failed["error_code"] == "UNKNOWN"
        assert f"device 'GPU' is not available here; available devices: {', '.join(AVAILABLE)}" in failed["error_message"]
    finally:
        assert srv.stop() == 0


@pytest.mark.parametrize("device", ["AUTO", "HETERO:CPU", "AUTO:CPU"])
def test_virtual_devices_pass_through(tiny_model_dir: Path, device: str) -> None:
    output = answers("--model_path", str(tiny_model_dir), "--target_device", device)
    assert any(f"engine ready on {device}" in line for line in output), output


def test_lm_pipeline_on_auto(tiny_model_dir: Path) -> None:
    output = answers("--model_path", str(tiny_model_dir), "--target_device", "AUTO", "--pipeline_type", "LM")
    assert any("engine ready on AUTO, pipeline LM" in line for line in output), output


@pytest.mark.parametrize("pipeline", ["LM_CB", "LM"])
def test_unknown_plugin_config_key_is_named(tiny_model_dir: Path, pipeline: str) -> None:
    result = run_cli(
        "--model_path", str(tiny_model_dir), "--model_name", "tiny", "--pipeline_type", pipeline,
        "--plugin_config", '{"NO_SUCH_KEY": 1}',
    )  # fmt: skip
    assert result.returncode == 1
    output = result.stdout + result.stderr
    expected = "plugin_config: the CPU device has no property 'NO_SUCH_KEY'"
    assert any("servable tiny failed to load" in line and expected in line for line in output.splitlines()), output


@pytest.mark.parametrize("plugin_config", ['{"INFERENCE_PRECISION_HINT": "f32"}', '{"NUM_STREAMS": 1}', '{"KV_CACHE_PRECISION": "u8"}'])
def test_plugin_config_reaches_openvino(tiny_model_dir: Path, plugin_config: str) -> None:
    answers("--model_path", str(tiny_model_dir), "--plugin_config", plugin_config)


def test_check_device_names() -> None:
    check_device(AVAILABLE[0])
    for passed in ("AUTO", "AUTO:GPU,CPU", "HETERO:GPU,CPU", "MULTI:CPU", "BATCH:CPU"):
        check_device(passed)  # OpenVINO resolves these itself
    for missing in ("GPU", "NPU", "GPU.1", "CPU.7", "TPU"):
        if missing not in AVAILABLE:
            with pytest.raises(UnavailableError, match="available devices: " + ", ".join(AVAILABLE)):
                check_device(missing)


def test_pipeline_type_rules() -> None:
    def options(**kw: object) -> LLMOptions:
        return LLMOptions.model_validate({"models_path": "./", **kw})

    assert options().pipeline == "LM_CB"
    assert options(pipeline_type="AUTO", device="NPU").pipeline == "LM"  # OVMS's rule
    assert options(device="NPU").pipeline == "LM"
    assert options(pipeline_type="AUTO", device="GPU").pipeline == "LM_CB"
    assert options(pipeline_type="LM").pipeline == "LM"
    assert options(pipeline_type="LM_CB", device="NPU").pipeline == "LM_CB"
    assert options(pipeline_type="LM").unsupported() == []
    assert options(pipeline_type="VLM_CB").unsupported() == [] and options(pipeline_type="VLM").pipeline == "VLM"
    # (AUTO against a vision model's folder: tests/calculators/llm/test_pipeline_type.py)
    # NPU's compiled prompt size is the prompt limit (plugin_config MAX_PROMPT_LEN, genai's 1024 unset)
    assert npu_prompt_limit(options(device="NPU")) == 1024
    assert npu_prompt_limit(options(device="NPU", pipeline_type="VLM")) == 1024  # the stateful VLMPipeline too
    assert npu_prompt_limit(options(device="NPU", plugin_config='{"MAX_PROMPT_LEN": 256}')) == 256
    assert npu_prompt_limit(options(device="CPU", pipeline_type="LM", plugin_config='{"MAX_PROMPT_LEN": 256}')) is None

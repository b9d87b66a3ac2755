"""OVMS's deployment of a vision-language model, unchanged, on the trained tiny VLM: its VLM
graph.pbtxt (tests/graphs/data/ovms_vlm_graph.pbtxt) under config.json's model_config_list
(VLM_CB) and mediapipe_config_list (the same graph with pipeline_type VLM), and `--model_path
--task text_generation` on the VLM folder (OVMS's pull-mode CLI: the folder makes it VLM_CB);
text-only and 1-image chats get the trained answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.helpers.images import png_url
from tests.helpers.servables import ovms_servable
from tests.helpers.server import Server, start_server
from tests.models import VLM_ANSWERS, VLM_CASES
from tests.models.vlm_data import TEXT_PROMPT

VLM_GRAPH = (Path(__file__).resolve().parents[1] / "graphs" / "data" / "ovms_vlm_graph.pbtxt").read_text()
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": TEXT_PROMPT}]


@pytest.fixture(scope="module")
def ovms_server(tiny_vlm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("ovms-vlm")
    ovms_servable(root / "models" / "vlm", tiny_vlm_dir, VLM_GRAPH)
    ovms_servable(root / "models" / "vlm-stateful", tiny_vlm_dir, VLM_GRAPH.replace("pipeline_type: VLM_CB", "pipeline_type: VLM"))
    config = {
        "model_config_list": [{"config": {"name": "vlm", "base_path": "models/vlm"}}],
        "mediapipe_config_list": [{"name": "vlm-stateful", "base_path": "models/vlm-stateful"}],
    }
    (root / "config.json").write_text(json.dumps(config))
    srv = start_server("--config_path", str(root / "config.json"))
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


def engine_line(server: Server, name: str) -> str:
    (line,) = [line for line in server.output if f"servable {name}: engine ready" in line]
    return line


def test_the_ovms_vlm_graphs_load_their_pipelines(ovms_server: Server) -> None:
    assert "pipeline VLM_CB (" in engine_line(ovms_server, "vlm")
    assert "pipeline VLM (" in engine_line(ovms_server, "vlm-stateful")


@pytest.mark.parametrize("model", ["vlm", "vlm-stateful"])
def test_text_chat_on_the_ovms_vlm_graph(ovms_server: Server, model: str) -> None:
    with openai.OpenAI(base_url=ovms_server.base_url + "/v3", api_key="x", max_retries=0) as client:
        reply = client.chat.completions.create(model=model, messages=HELLO, max_tokens=30)
        assert reply.choices[0].message.content == VLM_ANSWERS["text"] and reply.model == model
        stream = client.chat.completions.create(model=model, messages=HELLO, max_tokens=30, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == VLM_ANSWERS["text"]


@pytest.mark.parametrize("model", ["vlm", "vlm-stateful"])
@pytest.mark.parametrize("case", ["color_green_text_first", "shape_square_red_image_first"])
def test_image_chat_on_the_ovms_vlm_graph(ovms_server: Server, model: str, case: str) -> None:
    (chat,) = [c for c in VLM_CASES if c.name == case]
    with openai.OpenAI(base_url=ovms_server.base_url + "/v3", api_key="x", max_retries=0) as client:
        reply = client.chat.completions.create(model=model, messages=chat.openai_messages(png_url), max_tokens=16)  # type: ignore[arg-type]
    assert reply.choices[0].message.content == chat.answer


def test_task_text_generation_on_a_vlm_folder(tiny_vlm_dir: Path) -> None:
    server = start_server("--model_path", str(tiny_vlm_dir), "--model_name", "vlm", "--task", "text_generation")
    try:
        assert "pipeline VLM_CB (" in engine_line(server, "vlm")
        with openai.OpenAI(base_url=server.base_url + "/v3", api_key="x", max_retries=0) as client:
            reply = client.chat.completions.create(model="vlm", messages=HELLO, max_tokens=30)
        assert reply.choices[0].message.content == VLM_ANSWERS["text"]
    finally:
        assert server.stop() == 0, "\n".join(server.output)

"""Image and audio servables are known by their calculator (serving/kserve/inference.kind_of), not
taken for LLMs because they read HTTP_REQUEST_PAYLOAD: the console lists each with its kind,
Ollama's lists leave them out (Ollama lists no such models), /v3/models keeps them (OpenAI's lists
whisper and dall-e), KServe's metadata gives them no text tensors, and chat routes refuse them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.audio import speech_graph as whisper_graph
from tests.helpers.http import assert_openai_error, post, user
from tests.helpers.image_gen import image_graph
from tests.helpers.servables import llm_graph, write_config
from tests.helpers.server import Server, start_server
from tests.helpers.speech import speech_graph as tts_graph

KINDS = {"tiny": "text_generation", "whisper": "speech_to_text", "sd": "image_generation", "speech": "text_to_speech"}
MEDIA = ("whisper", "sd", "speech")


@pytest.fixture(scope="module")
def server(
    tiny_model_dir: Path, tiny_whisper_dir: Path, tiny_diffusion_dir: Path, tiny_tts_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    graphs = {
        "whisper": whisper_graph(tiny_whisper_dir),  # listed first: the first servable is not taken for the LLM
        "sd": image_graph(tiny_diffusion_dir),
        "speech": tts_graph(tiny_tts_dir),
        "tiny": llm_graph(tiny_model_dir),
    }
    srv = start_server("--config_path", str(write_config(tmp_path_factory.mktemp("media-kinds"), graphs)))
    yield srv
    assert srv.process.poll() is None, "the server exited during the module's tests:\n" + "\n".join(srv.output)
    assert srv.stop() == 0, "\n".join(srv.output)


def get(server: Server, path: str) -> httpx.Response:
    response = httpx.get(server.base_url + path, timeout=30)
    assert response.status_code == 200, response.text
    return response


def test_console_lists_each_kind(server: Server) -> None:
    listed = get(server, "/console/api/servables").json()["servables"]
    assert {s["name"]: s["kind"] for s in listed} == KINDS
    assert all(s["state"] == "available" for s in listed), listed


def test_ollama_lists_only_what_it_can_use(server: Server) -> None:
    assert [m["name"] for m in get(server, "/api/tags").json()["models"]] == ["tiny"]
    assert [m["name"] for m in get(server, "/api/ps").json()["models"]] == ["tiny"]
    for name in MEDIA:
        assert httpx.post(server.base_url + "/api/show", json={"model": name}, timeout=30).json()["capabilities"] == []


def test_openai_models_lists_every_servable(server: Server) -> None:
    assert sorted(m["id"] for m in get(server, "/v3/models").json()["data"]) == sorted(KINDS)


def test_kserve_metadata_has_no_text_tensors_for_media(server: Server) -> None:
    assert get(server, "/v2/models/tiny").json()["inputs"][0]["name"] == "text_input"
    for name in MEDIA:
        meta = get(server, f"/v2/models/{name}").json()
        assert meta["inputs"] == meta["outputs"] == [], meta
    body = {"inputs": [{"name": "text_input", "shape": [1], "datatype": "BYTES", "data": ["hello"]}]}
    refused = httpx.post(server.base_url + "/v2/models/sd/infer", json=body, timeout=30)
    assert refused.status_code == 400 and "not supported for image generation" in refused.json()["error"], refused.text


def test_llama_cpp_props_picks_the_llm(server: Server) -> None:
    assert get(server, "/props").json()["model_alias"] == "tiny"


@pytest.mark.parametrize("name", MEDIA)
def test_chat_to_a_media_servable_is_a_400_naming_the_model(server: Server, name: str) -> None:
    status, _, reply = post(server, "/v3/chat/completions", {"model": name, "messages": user("hi")})
    assert_openai_error(status, reply, 400, "model")

"""Every deployment in config/ serves (so none can rot): one server on config/config.json after
linking the models the way `make config-models` does (serving.demo.link_config), and a real
request to each servable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

import openai
import pytest

import tests.models as mb
from serving.demo import CONFIG_MODELS, link_config
from tests.helpers.images import png_url
from tests.helpers.server import ROOT, Server, start_server

CONFIG_DIR = ROOT / "config"


@pytest.fixture(scope="module")
def server(smollm2_cache_dir: Path) -> Iterator[Server]:
    links = link_config(CONFIG_DIR)
    assert sorted(links) == sorted(CONFIG_MODELS)
    # --cache_dir: SmolLM2's GGUF conversion shared with the other real-model tests
    srv = start_server("--config_path", str(CONFIG_DIR / "config.json"), "--cache_dir", str(smollm2_cache_dir))
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


def post_json(server: Server, path: str, body: dict[str, Any]) -> Any:
    request = Request(server.base_url + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def test_every_servable_is_served(client: openai.OpenAI) -> None:
    assert sorted(m.id for m in client.models.list().data) == sorted(CONFIG_MODELS)


def test_smollm2_answers(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "What is the capital of France?"}], max_tokens=40
    )
    assert "Paris" in (reply.choices[0].message.content or "")


def test_tiny_answers_and_parses_reasoning(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "Say this is a test"}])
    assert reply.choices[0].message.content == mb.TINY_PROMPTS["Say this is a test"]
    thought = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": mb.TINY_THINK_PROMPT}])
    assert thought.choices[0].message.content == mb.TINY_THINK_ANSWER  # reasoning_parser qwen3 in its graph
    assert thought.choices[0].message.reasoning_content == mb.TINY_THINK_REASONING  # type: ignore[attr-defined]


def test_minilm_embeds(client: openai.OpenAI) -> None:
    reply = client.embeddings.create(model="minilm", input=["A man is playing a guitar.", "Someone plays an instrument."])
    assert [len(d.embedding) for d in reply.data] == [384, 384]


def test_vlm_answers_on_ovms_vlm_graph(server: Server, client: openai.OpenAI) -> None:
    assert any("servable vlm: engine ready on CPU, pipeline VLM_CB (" in line for line in server.output)
    reply = client.chat.completions.create(model="vlm", messages=[{"role": "user", "content": "Hello"}])
    assert reply.choices[0].message.content == mb.VLM_ANSWERS["text"]
    (blue,) = [c for c in mb.VLM_CASES if c.name == "color_blue_text_first"]
    reply = client.chat.completions.create(model="vlm", messages=blue.openai_messages(png_url))  # type: ignore[arg-type]
    assert reply.choices[0].message.content == "blue."


def test_reranker_ranks_the_relevant_document_first(server: Server) -> None:
    documents = ["Plants make food by photosynthesis.", "Paris is the capital of France.", "Hamlet was written by Shakespeare."]
    reply = post_json(server, "/v3/rerank", {"model": "reranker", "query": "What is the capital of France?", "documents": documents})
    assert reply["results"][0]["index"] == 1


def test_speech_speaks_in_its_two_voices(client: openai.OpenAI) -> None:
    from tests.helpers.speech import read_wav

    alloy = read_wav(client.audio.speech.create(model="speech", voice="alloy", input="hello").content)[0]
    echo = read_wav(client.audio.speech.create(model="speech", voice="echo", input="hello").content)[0]
    assert alloy.shape == echo.shape == (6 * 5120,) and (alloy != echo).any()  # config/speech's voices differ


def test_whisper_transcribes_in_every_format(client: openai.OpenAI) -> None:
    from tests.helpers.audio import encode
    from tests.models.whisper_data import WHISPER_CASES

    case = WHISPER_CASES[0]
    text = " ".join(case.words)
    upload = ("case.wav", encode(case), "audio/wav")
    assert client.audio.transcriptions.create(model="whisper", file=upload).text == text
    assert client.audio.transcriptions.create(model="whisper", file=upload, response_format="text").strip() == text
    for subtitles in ("srt", "vtt"):
        assert text in client.audio.transcriptions.create(model="whisper", file=upload, response_format=subtitles)
    verbose = client.audio.transcriptions.create(model="whisper", file=upload, response_format="verbose_json")
    assert verbose.text == text and verbose.segments


def test_sd_generates_and_edits(client: openai.OpenAI) -> None:
    from tests.helpers.image_gen import decoded, png

    made = client.images.generate(model="sd", prompt="a red cat", size="64x64", n=2, extra_body={"rng_seed": 3})
    assert [decoded(image.b64_json)[1] for image in made.data] == [(64, 64), (64, 64)]
    edited = client.images.edit(model="sd", image=("in.png", png(), "image/png"), prompt="a blue cat", extra_body={"rng_seed": 3})
    assert decoded(edited.data[0].b64_json)[1] == (64, 64)

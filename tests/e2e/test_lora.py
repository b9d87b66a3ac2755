"""LoRA adapters on a real server (single-model mode, `--lora_adapter`): the base model and each
adapter are model names of their own, answering exactly what each was trained to; requests for
different adapters run at once on one engine (genai applies one adapter per step: the worker
gives the adapters turns); an unknown adapter is a 404. Options and names:
tests/calculators/llm/test_lora.py."""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.http import CHAT, assert_openai_error, chat, chat_stream, get, post, user
from tests.helpers.server import Server, start_server
from tests.models import TINY_LORA_ANSWERS, TINY_PROMPTS, build_tiny_lora_adapters

PROMPTS = list(TINY_LORA_ANSWERS["swap"])  # the prompts every adapter was trained on


@pytest.fixture(scope="module")
def adapters_dir() -> Path:
    return build_tiny_lora_adapters()


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, adapters_dir: Path) -> Iterator[Server]:
    flags = ["--lora_adapter", f"swap={adapters_dir / 'swap'}"]
    flags += ["--lora_adapter", f"count={adapters_dir / 'count' / 'adapter_model.safetensors'}@1.0"]
    srv = start_server("--model_path", str(tiny_model_dir), "--model_name", "tiny", "--cache_size", "1", *flags)
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


def expected(model: str, prompt: str) -> str:
    _base, _sep, adapter = model.partition(":")
    return TINY_LORA_ANSWERS[adapter][prompt] if adapter else TINY_PROMPTS[prompt]


def test_models_lists_the_base_and_each_adapter(server: Server) -> None:
    status, body = get(server, "/v3/models")
    assert status == 200
    cards = {card["id"]: card for card in json.loads(body)["data"]}
    assert list(cards) == ["tiny", "tiny:swap", "tiny:count"]
    assert "parent" not in cards["tiny"]
    assert cards["tiny:swap"]["parent"] == "tiny" and cards["tiny:swap"]["object"] == "model"
    status, body = get(server, "/v3/models/tiny:count")
    assert status == 200 and json.loads(body)["id"] == "tiny:count" and json.loads(body)["parent"] == "tiny"


@pytest.mark.parametrize("model", ["tiny", "tiny:swap", "tiny:count"])
def test_each_name_answers_its_own(server: Server, model: str) -> None:
    for prompt in PROMPTS:
        status, _headers, body = post(server, CHAT, {"model": model, "messages": user(prompt), "max_tokens": 50})
        assert status == 200, body
        answer = json.loads(body)
        assert answer["model"] == model  # the name the request gave
        assert answer["choices"][0]["message"]["content"] == expected(model, prompt)
    assert expected("tiny:swap", PROMPTS[0]) != TINY_PROMPTS[PROMPTS[0]]  # the adapter changes the answer


def test_the_base_still_answers_everything(server: Server) -> None:
    for prompt, answer in TINY_PROMPTS.items():
        assert chat(server, "tiny", prompt) == answer


@pytest.mark.parametrize("model", ["tiny:swap", "tiny:count"])
def test_streaming_with_an_adapter(server: Server, model: str) -> None:
    for prompt in PROMPTS:
        assert chat_stream(server, model, prompt) == expected(model, prompt)


def test_adapters_and_base_at_once(server: Server) -> None:
    """Several requests for each name at once, streaming and not: each gets its own answer."""
    jobs = [(model, prompt, stream) for model in ("tiny", "tiny:swap", "tiny:count") for prompt in PROMPTS for stream in (False, True)]
    jobs *= 2
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        futures = {pool.submit(chat_stream if stream else chat, server, model, prompt): (model, prompt) for model, prompt, stream in jobs}
        for future, (model, prompt) in futures.items():
            assert future.result() == expected(model, prompt), (model, prompt)


def test_unknown_adapter_is_404(server: Server) -> None:
    for model in ("tiny:nope", "nope:swap", "tiny:"):
        status, _headers, body = post(server, CHAT, {"model": model, "messages": user("hi")})
        error = assert_openai_error(status, body, 404, "model")
        assert error["code"] == "model_not_found" and model in error["message"]
    status, body = get(server, "/v3/models/tiny:nope")
    assert status == 404


def test_kserve_infer_with_an_adapter(server: Server) -> None:
    prompt = PROMPTS[0]
    for model in ("tiny", "tiny:swap"):
        body = {"inputs": [{"name": "text_input", "datatype": "BYTES", "shape": [1], "data": [prompt]}]}
        status, _headers, raw = post(server, f"/v2/models/{model}/infer", body)
        assert status == 200, raw
        reply = json.loads(raw)
        assert reply["model_name"] == model
        assert reply["outputs"][0]["data"] == [expected(model, prompt)]
    status, _headers, raw = post(server, "/v2/models/tiny:nope/infer", body)
    assert status == 404, raw

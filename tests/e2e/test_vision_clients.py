"""Images through every chat API but OpenAI's own (tests/e2e/test_vlm_chat.py has that): the tiny
LLaVA (VLM_CB) answers VLM_CASES exactly when the images come as Anthropic's base64 image blocks
(`anthropic` SDK: colour and shape cases), Responses' `input_image` parts (`openai` SDK's
`client.responses.create`: every case, two images and follow-up turns included) and Ollama's
`images` (`ollama` client: the text-first cases). One server for the module."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import ollama
import openai
import pytest

from tests.helpers.images import png, png_url
from tests.helpers.server import Server, start_server
from tests.models.vlm_data import VLM_CASES, VlmCase

CASES = [case for case in VLM_CASES if case.name.startswith(("color", "shape"))]
IDS = [case.name for case in CASES]


@pytest.fixture(scope="module")
def server(tiny_vlm_dir: Path) -> Iterator[Server]:
    srv = start_server("--model_path", str(tiny_vlm_dir), "--model_name", "vlm")
    try:
        yield srv
    finally:
        assert srv.stop() == 0, "\n".join(srv.output)


def _parts(case: VlmCase, image_part: Any) -> list[Any]:
    """The case's messages with each `{"type": "image"}` part replaced by `image_part(pixels)`,
    in order (the cases' texts are `{"type": "text"}` parts or plain strings)."""
    images = iter(case.images)
    out = []
    for message in case.messages:
        content = message["content"]
        if isinstance(content, list):
            content = [image_part(next(images)) if part["type"] == "image" else dict(part) for part in content]
        out.append({**message, "content": content})
    return out


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_anthropic_image_blocks(server: Server, case: VlmCase) -> None:
    def block(pixels: Any) -> dict[str, Any]:
        data = base64.b64encode(png(pixels)).decode()
        return {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}

    with anthropic.Anthropic(base_url=server.base_url, api_key="unused", max_retries=0) as sdk:
        reply = sdk.messages.create(model="vlm", max_tokens=16, messages=_parts(case, block))
    assert reply.content[0].type == "text" and reply.content[0].text == case.answer
    assert reply.stop_reason == "end_turn"


def _responses_input(case: VlmCase) -> list[Any]:
    """Responses' input items: text parts as `input_text`, images as `input_image` data URLs."""
    items = []
    for message in _parts(case, lambda pixels: {"type": "input_image", "image_url": png_url(pixels)}):
        content = message["content"]
        if isinstance(content, list):
            content = [{"type": "input_text", "text": p["text"]} if p["type"] == "text" else p for p in content]
        items.append({"role": message["role"], "content": content})
    return items


@pytest.mark.parametrize("case", VLM_CASES, ids=[case.name for case in VLM_CASES])
def test_responses_input_image(server: Server, case: VlmCase) -> None:
    with openai.OpenAI(base_url=f"{server.base_url}/v3", api_key="unused", max_retries=0) as sdk:
        response = sdk.responses.create(model="vlm", input=_responses_input(case), max_output_tokens=16)
    assert response.output_text == case.answer
    assert response.status == "completed"
    assert response.usage is not None and response.usage.input_tokens > 0


#: Ollama carries a message's images beside its text, and ovserve (as Ollama's templates do) puts
#: the text first: the cases with that order, one and two images, and a follow-up turn.
OLLAMA_CASES = [case for case in VLM_CASES if case.name.endswith("text_first")]


@pytest.mark.parametrize("case", OLLAMA_CASES, ids=[case.name for case in OLLAMA_CASES])
def test_ollama_images(server: Server, case: VlmCase) -> None:
    pixels = iter(case.images)
    messages = []
    for message in case.messages:
        content = message["content"]
        if isinstance(content, list):
            text = "".join(part["text"] for part in content if part["type"] == "text")
            images = [base64.b64encode(png(next(pixels))).decode() for part in content if part["type"] == "image"]
            messages.append({"role": message["role"], "content": text, "images": images})
        else:
            messages.append({"role": message["role"], "content": content})
    with ollama.Client(host=server.base_url) as client:
        reply = client.chat(model="vlm", messages=messages, options={"num_predict": 16})
    assert reply.message.content == case.answer
    assert reply.done_reason == "stop"

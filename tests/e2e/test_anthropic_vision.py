"""Anthropic image blocks onto the vision path: the tiny LLaVA (VLM_CB) names a solid image's
colour through the `anthropic` SDK, the image sent as a base64 source block, in every VLM_CASES
colour and shape case (the image blocks where the case puts them)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from tests.helpers.images import png
from tests.helpers.server import Server, start_server
from tests.models.vlm_data import VLM_CASES, VlmCase

CASES = [case for case in VLM_CASES if case.name.startswith(("color", "shape"))]


@pytest.fixture(scope="module")
def client(tiny_vlm_dir: Path) -> Iterator[anthropic.Anthropic]:
    srv: Server = start_server("--model_path", str(tiny_vlm_dir), "--model_name", "vlm")
    try:
        with anthropic.Anthropic(base_url=srv.base_url, api_key="unused", max_retries=0) as sdk:
            yield sdk
    finally:
        assert srv.stop() == 0, "\n".join(srv.output)


def anthropic_messages(case: VlmCase) -> list[Any]:
    """The case's messages with each `{"type": "image"}` part as a base64 image block."""
    images = iter(case.images)
    out = []
    for message in case.messages:
        content = message["content"]
        if isinstance(content, list):
            content = [
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(png(next(images))).decode()},
                }
                if part["type"] == "image"
                else dict(part)
                for part in content
            ]
        out.append({**message, "content": content})
    return out


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_image_blocks_answer_exactly(client: anthropic.Anthropic, case: VlmCase) -> None:
    reply = client.messages.create(model="vlm", max_tokens=16, messages=anthropic_messages(case))
    assert reply.content[0].type == "text" and reply.content[0].text == case.answer
    assert reply.stop_reason == "end_turn"

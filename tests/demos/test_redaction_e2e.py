"""demos/redaction as shipped (its config.json, graph.pbtxt and module) on a real server with the
tiny model, beside the stock graph on the same model (`plain`) for the unredacted run: unary and
streamed answers are redacted alike, SSE framing stays intact, usage is unchanged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.demos.demo_modules import copy_demo
from tests.helpers.server import ROOT, Server, start_server
from tests.models import TINY_PROMPTS

QUESTION = "How do I reach support?"
REDACTED = "Write to [email] or to [email] today."
MESSAGES: list[Any] = [{"role": "user", "content": QUESTION}]


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("redaction")
    config_path = copy_demo("redaction", root, tiny_model_dir)
    # The shipped config, plus the stock graph on the same model for the unredacted answer.
    (root / "plain").mkdir()
    (root / "plain" / "graph.pbtxt").write_text(
        (ROOT / "graphs" / "stock" / "llm.pbtxt").read_text().replace('models_path: "./"', 'models_path: "../model"')
    )
    config = json.loads(config_path.read_text())
    config["model_config_list"].append({"config": {"name": "plain", "base_path": "plain"}})
    config_path.write_text(json.dumps(config))
    srv = start_server("--config_path", str(config_path))
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


def test_the_model_gives_the_addresses_and_the_demo_masks_them(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(model="plain", messages=MESSAGES)
    assert plain.choices[0].message.content == TINY_PROMPTS[QUESTION]
    redacted = client.chat.completions.create(model="tiny", messages=MESSAGES)
    assert redacted.choices[0].message.content == REDACTED
    assert redacted.choices[0].finish_reason == "stop"
    assert redacted.usage == plain.usage  # every token counted, none twice


def test_streamed_answer_equals_the_unary_one_with_the_same_usage(client: openai.OpenAI) -> None:
    unary = client.chat.completions.create(model="tiny", messages=MESSAGES)
    chunks = list(client.chat.completions.create(model="tiny", messages=MESSAGES, stream=True, stream_options={"include_usage": True}))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 1  # streamed, not held back to the end
    assert "".join(pieces) == unary.choices[0].message.content == REDACTED
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage == unary.usage
    # no piece carries a fragment of an address
    assert not any(word in piece for piece in pieces for word in ("help", "example", "sales", "ovserve", "@"))


def test_sse_framing_is_intact(server: Server) -> None:
    body = {"model": "tiny", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", f"{server.base_url}/v3/chat/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = b"".join(response.iter_bytes())
    assert raw.endswith(b"data: [DONE]\n\n")
    events = raw.split(b"\n\n")
    assert events[-1] == b"" and events[-2] == b"data: [DONE]"
    parsed = []
    for event in events[:-2]:
        assert event.startswith(b"data: ") and b"\n" not in event
        parsed.append(json.loads(event[len(b"data: ") :]))
    assert {p["object"] for p in parsed} == {"chat.completion.chunk"}
    assert len({p["id"] for p in parsed}) == 1
    text = "".join(p["choices"][0]["delta"].get("content") or "" for p in parsed if p["choices"])
    assert text == REDACTED


def test_logprobs_keep_one_entry_per_token_and_hide_the_addresses(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="tiny", messages=MESSAGES, logprobs=True)
    assert reply.choices[0].message.content == REDACTED
    entries = reply.choices[0].logprobs.content if reply.choices[0].logprobs else None
    assert entries is not None and reply.usage is not None
    assert len(entries) == reply.usage.completion_tokens
    shown = "".join(e.token for e in entries)
    assert not any(word in shown for word in ("help", "example", "sales", "ovserve", "@"))
    assert shown.startswith("Write to")
    chunks = list(client.chat.completions.create(model="tiny", messages=MESSAGES, logprobs=True, stream=True))
    streamed = [e for c in chunks if c.choices and c.choices[0].logprobs for e in c.choices[0].logprobs.content or []]
    assert [(e.token, e.logprob) for e in streamed] == [(e.token, e.logprob) for e in entries]

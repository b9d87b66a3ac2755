"""Anthropic's Messages API through the `anthropic` SDK on the tiny trained model, with an API key,
metrics, and the hermes3 tool / qwen3 reasoning parsers on: exact answers unary and streamed, the
event sequence, a tool use round trip, thinking, stop sequences, count_tokens, the key
(`x-api-key` or Bearer), errors in Anthropic's shape, the per-route metric label; raw HTTP for
what the SDK does not send."""

from __future__ import annotations

import http.client
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
from anthropic.types import ToolParam

import tests.models as mb
from tests.helpers.http import post
from tests.helpers.server import Server, start_server

KEY = "sk-ant-test"
PROMPT = "What is the capital of France?"
TOOLS: list[ToolParam] = [
    {"name": t["function"]["name"], "description": t["function"]["description"], "input_schema": t["function"]["parameters"]}
    for t in mb.TINY_TOOLS
]
SSE_ORDER = ["message_start", "content_block_start", "ping"]
AUTH = {"x-api-key": KEY}


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    key_file = tmp_path_factory.mktemp("anthropic") / "key.txt"
    key_file.write_text(KEY + "\n")
    srv = start_server(
        "--model_path", str(tiny_model_dir), "--model_name", "tiny", "--api_key_file", str(key_file), "--metrics_enable",
        "--tool_parser", "hermes3", "--reasoning_parser", "qwen3",
    )  # fmt: skip
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.base_url, api_key=KEY, max_retries=0) as sdk:
        yield sdk


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize("prompt", [PROMPT, "Say hello in French."])
def test_unary_exact_answer(client: anthropic.Anthropic, prompt: str) -> None:
    reply = client.messages.create(model="tiny", max_tokens=64, messages=user(prompt))
    assert reply.type == "message" and reply.role == "assistant" and reply.model == "tiny" and reply.id.startswith("msg_")
    assert [b.type for b in reply.content] == ["text"]
    assert reply.content[0].text == mb.TINY_PROMPTS[prompt]  # type: ignore[union-attr]
    assert reply.stop_reason == "end_turn" and reply.stop_sequence is None
    assert reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0


def test_system_as_blocks_and_history(client: anthropic.Anthropic) -> None:
    reply = client.messages.create(
        model="tiny",
        max_tokens=64,
        system=[{"type": "text", "text": "You are helpful."}],
        messages=[{"role": "user", "content": [{"type": "text", "text": PROMPT}]}],
        metadata={"user_id": "u1"},
        extra_headers={"anthropic-beta": "anything"},
    )
    assert reply.content[0].type == "text"


def test_stream_text_and_event_sequence(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="tiny", max_tokens=64, messages=user(PROMPT)) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == mb.TINY_PROMPTS[PROMPT]
    assert final.stop_reason == "end_turn" and final.content[0].text == text  # type: ignore[union-attr]
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0
    events = [e.type for e in client.messages.create(model="tiny", max_tokens=64, messages=user(PROMPT), stream=True)]
    assert events[:2] == ["message_start", "content_block_start"]
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(events[2:-3]) == {"content_block_delta"}


def test_raw_stream_events(server: Server) -> None:
    """The SSE frames as sent (the SDK hides `ping`): `event:` names matching each data's type."""
    body = {"model": "tiny", "max_tokens": 64, "messages": user(PROMPT), "stream": True}
    status, headers, raw = post(server, "/v1/messages", body, AUTH)
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    frames = [frame.split("\n") for frame in raw.decode().strip().split("\n\n")]
    names = [lines[0].removeprefix("event: ") for lines in frames]
    assert all(json.loads(lines[1].removeprefix("data: "))["type"] == name for name, lines in zip(names, frames, strict=True))
    assert names[:3] == SSE_ORDER and names[-1] == "message_stop"
    delta = json.loads(frames[-2][1].removeprefix("data: "))
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None} and delta["usage"]["input_tokens"] > 0


def test_max_tokens_and_stop_sequences(client: anthropic.Anthropic) -> None:
    cut = client.messages.create(model="tiny", max_tokens=2, messages=user("Tell me a story."))
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 2
    answer = mb.TINY_PROMPTS["Count to five."]  # "One, two, three, four, five."
    stopped = client.messages.create(model="tiny", max_tokens=64, messages=user("Count to five."), stop_sequences=["three"])
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == "three"
    assert stopped.content[0].text == answer[: answer.index("three")]  # type: ignore[union-attr]
    with client.messages.stream(model="tiny", max_tokens=64, messages=user("Count to five."), stop_sequences=["three"]) as stream:
        assert "".join(stream.text_stream) == answer[: answer.index("three")]
        final = stream.get_final_message()
    assert final.stop_reason == "stop_sequence" and final.stop_sequence == "three"


def test_sampling_fields_accepted(client: anthropic.Anthropic) -> None:
    reply = client.messages.create(
        model="tiny", max_tokens=8, messages=user(PROMPT), extra_body={"temperature": 0.7, "top_p": 0.9, "top_k": 5}
    )
    assert reply.usage.output_tokens > 0


def test_tool_use_round_trip(client: anthropic.Anthropic) -> None:
    first = client.messages.create(model="tiny", max_tokens=64, messages=user(mb.TINY_TOOL_PROMPT), tools=TOOLS)
    assert first.stop_reason == "tool_use"
    [call] = [b for b in first.content if b.type == "tool_use"]
    assert call.name == mb.TINY_TOOL_CALL["name"] and call.input == mb.TINY_TOOL_CALL["arguments"]
    assert call.id.startswith("toolu_")
    history: list[Any] = [
        *user(mb.TINY_TOOL_PROMPT),
        first.to_param(),
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": mb.TINY_TOOL_RESULT}]},
    ]
    second = client.messages.create(model="tiny", max_tokens=64, messages=history, tools=TOOLS)
    assert second.stop_reason == "end_turn"
    assert second.content[0].text == mb.TINY_TOOL_FOLLOWUP_ANSWER  # type: ignore[union-attr]


def test_tool_use_streamed(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="tiny", max_tokens=64, messages=user(mb.TINY_TOOL_PROMPT), tools=TOOLS) as stream:
        deltas = [e.delta.type for e in stream if e.type == "content_block_delta"]
        final = stream.get_final_message()
    assert "input_json_delta" in deltas and final.stop_reason == "tool_use"
    [call] = [b for b in final.content if b.type == "tool_use"]
    assert call.input == mb.TINY_TOOL_CALL["arguments"]


def test_tool_choice_none_and_named(client: anthropic.Anthropic) -> None:
    named = client.messages.create(
        model="tiny", max_tokens=64, messages=user(mb.TINY_TOOL_PROMPT), tools=TOOLS, tool_choice={"type": "tool", "name": "get_weather"}
    )
    assert [b.type for b in named.content] == ["tool_use"] and named.stop_reason == "tool_use"
    none = client.messages.create(model="tiny", max_tokens=64, messages=user(PROMPT), tools=TOOLS, tool_choice={"type": "none"})
    assert none.stop_reason == "end_turn"


def test_thinking_block(client: anthropic.Anthropic) -> None:
    reply = client.messages.create(model="tiny", max_tokens=64, messages=user(mb.TINY_THINK_PROMPT))
    assert [b.type for b in reply.content] == ["thinking", "text"]
    assert reply.content[0].thinking.strip() == mb.TINY_THINK_REASONING  # type: ignore[union-attr]
    assert reply.content[1].text.strip() == mb.TINY_THINK_ANSWER  # type: ignore[union-attr]
    with client.messages.stream(model="tiny", max_tokens=64, messages=user(mb.TINY_THINK_PROMPT)) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]


def test_count_tokens_is_the_prompts_usage(client: anthropic.Anthropic) -> None:
    for prompt, tools in ((PROMPT, []), (mb.TINY_TOOL_PROMPT, TOOLS)):
        counted = client.messages.count_tokens(model="tiny", messages=user(prompt), tools=tools)
        reply = client.messages.create(model="tiny", max_tokens=4, messages=user(prompt), tools=tools)
        assert counted.input_tokens == reply.usage.input_tokens > 0


def test_key_as_x_api_key_or_bearer(server: Server) -> None:
    with anthropic.Anthropic(base_url=server.base_url, api_key="wrong", max_retries=0) as sdk:
        with pytest.raises(anthropic.AuthenticationError) as refused:
            sdk.messages.create(model="tiny", max_tokens=4, messages=user(PROMPT))
    assert refused.value.body["type"] == "error" and refused.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with anthropic.Anthropic(base_url=server.base_url, auth_token=KEY, max_retries=0) as sdk:  # Authorization: Bearer
        assert sdk.messages.count_tokens(model="tiny", messages=user(PROMPT)).input_tokens > 0
    body = {"model": "tiny", "max_tokens": 4, "messages": user(PROMPT)}
    for path in ("/v1/messages", "/v1/messages/count_tokens"):
        status, _, reply = post(server, path, body)
        assert status == 401 and json.loads(reply)["error"]["type"] == "authentication_error"
    status, _, _ = post(server, "/v1/messages", body, {"x-api-key": KEY, "anthropic-version": "2023-06-01"})
    assert status == 200


def test_errors_in_anthropic_shape_through_the_sdk(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as unknown:
        client.messages.create(model="nope", max_tokens=4, messages=user(PROMPT))
    assert unknown.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(model="tiny", max_tokens=0, messages=user(PROMPT))
    assert bad.value.body["error"]["type"] == "invalid_request_error" and "max_tokens" in bad.value.body["error"]["message"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"model": "tiny", "messages": user(PROMPT)}, 400),  # max_tokens is required
        ({"model": "tiny", "max_tokens": 4, "messages": []}, 400),
        ({"model": "tiny", "max_tokens": 4, "messages": [{"role": "system", "content": "x"}]}, 400),
        ({"model": "tiny", "max_tokens": 4, "messages": [*user(PROMPT), {"role": "assistant", "content": "The"}]}, 400),  # prefill
        ({"model": "tiny", "max_tokens": 4, "messages": user(PROMPT), "temperature": 1.5}, 400),
        ({"model": "tiny", "max_tokens": 4, "messages": user(PROMPT), "frobnicate": 1}, 400),
        ({"model": "tiny", "max_tokens": 4, "messages": user(PROMPT), "tools": [{"type": "web_search_20250305", "name": "w"}]}, 400),
        ({"model": "tiny", "max_tokens": 4, "messages": user(PROMPT), "tool_choice": {"type": "tool"}}, 400),
        ({"model": "tiny", "max_tokens": 4, "messages": [{"role": "user", "content": [{"type": "video"}]}]}, 400),
        ({"model": "tiny", "max_tokens": 4, "messages": user(PROMPT), "stop_sequences": [""]}, 400),
        ({"model": 5, "max_tokens": 4, "messages": user(PROMPT)}, 400),
        (b"[1, 2]", 400),
        (b"{not json", 400),
        (b'{"model": "tiny", "max_tokens": 4, "messages": [{"role": "user", "content": "' + b"a" * (20 * 1024 * 1024) + b'"}]}', 413),
    ],
)
def test_hostile_bodies_get_anthropic_errors(server: Server, body: Any, status: int) -> None:
    got, headers, reply = post(server, "/v1/messages", body, AUTH)
    assert got == status, reply[:300]
    assert headers["Content-Type"].startswith("application/json")
    error = json.loads(reply)
    assert error["type"] == "error" and set(error["error"]) == {"type", "message"} and error["error"]["message"], error


def test_wrong_media_type_in_anthropic_shape(server: Server) -> None:
    got, _, reply = post(server, "/v1/messages", b"{}", {**AUTH, "Content-Type": "text/plain"})
    assert got == 415 and json.loads(reply)["type"] == "error"


def test_metrics_label_each_route(server: Server, client: anthropic.Anthropic) -> None:
    client.messages.create(model="tiny", max_tokens=4, messages=user(PROMPT))
    client.messages.count_tokens(model="tiny", messages=user(PROMPT))
    request = urllib.request.Request(server.base_url + "/metrics", headers=AUTH)
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    for route in ("/v1/messages", "/v1/messages/count_tokens"):
        assert f'ovserve_http_requests_total{{endpoint="{route}",model="tiny",status="200"}}' in text, route
    assert 'ovserve_request_duration_seconds_count{endpoint="/v1/messages",model="tiny"}' in text


TOOL_RESULT_HEAD = b'{"model": "tiny", "max_tokens": 4, "messages": [{"role": "user", "content": [{"type": "tool_result", "content": '


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "tiny", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
        b'{"model": "tiny", "max_tokens": 1e400, "messages": [{"role": "user", "content": "hi"}]}',
        b"\xff\xfe{}",
        b'{"model": "tiny", "max_tokens": 4, "messages": [{"role": "user", "content": "\\ud800"}]}',
        nested(100_000),
        b'{"model": "tiny", "max_tokens": 4, "messages": ' + nested(100_000) + b"}",
        TOOL_RESULT_HEAD + nested(5000) + b"}]}]}",
        json.dumps({"model": "tiny", "max_tokens": 2**64, "messages": user(PROMPT)}).encode(),
        json.dumps({"model": "tiny", "max_tokens": 4, "messages": user(PROMPT), "top_k": 2**64}).encode(),
    ],
    ids=[
        "nan",
        "1e400",
        "bad utf-8",
        "lone surrogate",
        "100k nested",
        "100k nested in a field",
        "deep tool result",
        "2**64",
        "top_k 2**64",
    ],
)
def test_hostile_bodies_never_5xx(server: Server, body: bytes) -> None:
    status, headers, reply = post(server, "/v1/messages", body, AUTH)
    assert status < 500, reply[:300]
    if status >= 400:
        assert headers["Content-Type"].startswith("application/json") and json.loads(reply)["type"] == "error"


def test_other_methods_and_paths_in_anthropic_shape(server: Server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        for method, path, status in (
            ("GET", "/v1/messages", 405),
            ("PUT", "/v1/messages/count_tokens", 405),
            ("POST", "/v1/messages/nope", 404),
        ):
            conn.request(method, path, body=b"{}", headers={**AUTH, "Content-Type": "application/json"})
            response = conn.getresponse()
            body = json.loads(response.read())
            assert response.status == status and body["type"] == "error", body
    finally:
        conn.close()

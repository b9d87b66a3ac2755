"""The Responses front end's pure parts: the store's bound and TTL, and request translation."""

from __future__ import annotations

import pytest

from graphs.errors import InvalidRequestError
from serving.responses import request as rq
from serving.responses.store import ResponseStore, ResponseStores


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_store_drops_the_oldest_and_the_expired() -> None:
    clock = Clock()
    store = ResponseStore(size=2, ttl_s=10, clock=clock)
    for name in ("a", "b", "c"):
        store.put({"id": name}, [])
        clock.now += 4
    assert store.get("a") is None and store.get("b") is not None  # size 2: a went
    clock.now = 14.5  # b was stored at 4: expired; c at 8: kept
    assert store.get("b") is None and store.get("c") is not None
    assert store.delete("c") and not store.delete("c") and len(store) == 0


def test_size_zero_keeps_nothing_and_stores_are_per_servable() -> None:
    assert len(ResponseStores(size=0).of("tiny")) == 0
    stores = ResponseStores(size=1)
    stores.of("tiny").put({"id": "r1"}, [])
    stores.of("other").put({"id": "r2"}, [])
    assert stores.find("r1") is not None and stores.find("r2") is not None  # one per servable: r1 not pushed out


def test_items_become_chat_messages() -> None:
    request = rq.parse(
        {
            "model": "tiny",
            "instructions": "Be brief.",
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Let me check."}]},
                {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city": "Paris"}', "id": "fc_1"},
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
                {"type": "reasoning", "id": "rs_1", "summary": []},
            ],
            "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": False}],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}},
            "max_output_tokens": 5,
        }
    )
    body = rq.chat_body(request, [], "tiny")
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    assert body["tools"] == [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["response_format"] == {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    assert body["max_completion_tokens"] == 5


def test_images_become_image_url_parts() -> None:
    image = {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"}
    request = rq.parse({"model": "v", "input": [{"role": "user", "content": [{"type": "input_text", "text": "What?"}, image]}]})
    [message] = rq.messages(request)
    assert message["content"] == [
        {"type": "text", "text": "What?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"model": "t", "input": "hi", "unknown": 1},
        {"model": "t", "input": [{"type": "input_image", "file_id": "f"}]},
        {"model": "t", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
        {"model": "t", "input": "hi", "text": {"format": {"type": "json_schema"}}},
    ],
)
def test_unsupported_is_a_400(body: dict[str, object]) -> None:
    with pytest.raises(InvalidRequestError):
        rq.chat_body(rq.parse(body), [], "t")

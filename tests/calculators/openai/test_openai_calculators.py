"""OpenAIRequestCalculator and OpenAIResponseCalculator, each alone through the harness."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from calculators.openai.protocol import MAX_STOP_STRINGS, ChatCompletionRequest, CompletionRequest
from calculators.openai.request_calculator import OpenAIRequestCalculator
from calculators.openai.response_calculator import OpenAIResponseCalculator
from calculators.packets import (
    Endpoint,
    GenerationRequest,
    HttpRequestPayload,
    HttpResponsePayload,
    ResponsePayload,
    StreamChunks,
    TextChunk,
    TextDelta,
)
from graphs.errors import InvalidRequestError
from graphs.testing import run_calculator
from serving.openai_routes import OpenAIEncoder, streaming

CHAT: Endpoint = "chat/completions"
COMPLETIONS: Endpoint = "completions"
MESSAGES = [{"role": "user", "content": "Say this is a test"}]


# --- OpenAIRequestCalculator ---------------------------------------------------------------------


async def validate_request(endpoint: Endpoint, body: dict[str, Any]) -> GenerationRequest:
    outputs = await run_calculator(OpenAIRequestCalculator, {"HTTP_REQUEST_PAYLOAD": [HttpRequestPayload(endpoint, body)]})
    [packet] = outputs["REQUEST"]
    assert packet.timestamp == 0
    return packet.value


async def test_chat_request_is_validated() -> None:
    before = int(time.time())
    request = await validate_request(CHAT, {"model": "tiny", "messages": MESSAGES, "max_tokens": 5, "stream": True})
    assert request.endpoint == CHAT
    assert isinstance(request.params, ChatCompletionRequest)
    assert request.params.messages[0].text() == "Say this is a test"
    assert (request.params.max_tokens, request.stream) == (5, True)
    assert request.id.startswith("chatcmpl-") and len(request.id) > len("chatcmpl-") + 8
    assert before <= request.created <= int(time.time())


async def test_completion_request_is_validated() -> None:
    request = await validate_request(COMPLETIONS, {"model": "tiny", "prompt": ["The quick brown fox"], "n": 2})
    assert isinstance(request.params, CompletionRequest)
    assert request.params.prompt_text() == "The quick brown fox"
    assert request.id.startswith("cmpl-") and not request.id.startswith("cmpl-chat")
    assert request.params.n == 2


async def test_request_ids_are_unique() -> None:
    body = {"model": "tiny", "prompt": "x"}
    ids = {(await validate_request(COMPLETIONS, body)).id for _ in range(5)}
    assert len(ids) == 5


async def test_content_parts_are_accepted() -> None:
    body = {"model": "tiny", "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}
    request = await validate_request(CHAT, body)
    assert isinstance(request.params, ChatCompletionRequest)
    assert request.params.messages[0].text() == "ab"


CHAT_BODY = {"model": "tiny", "messages": MESSAGES}


@pytest.mark.parametrize(
    ("endpoint", "changes", "param", "message"),
    [
        (CHAT, {"logit_bias": {"5": 1.0}}, "logit_bias", "logit_bias is not supported"),
        (CHAT, {"messages": [{"role": "user", "content": "hi", "mood": "happy"}]}, "messages.0.mood", "unsupported field"),
        (CHAT, {"max_tokens": "ten"}, "max_tokens", "invalid value for max_tokens"),
        (CHAT, {"max_tokens": 0}, "max_tokens", "max_tokens"),
        (CHAT, {"temperature": 2.5}, "temperature", "temperature"),
        (CHAT, {"stream": "yes"}, "stream", "stream"),
        (CHAT, {"n": 0}, "n", "n"),
        (CHAT, {"messages": []}, "messages", "messages"),
        (CHAT, {"messages": "hello"}, "messages", "messages"),
        (CHAT, {"messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role", "role"),
        (CHAT, {"messages": [{"role": "user", "content": 5}]}, "messages.0.content", "content"),
        (CHAT, {"model": None}, "model", "model"),
        (CHAT, {"stream_options": {"include_usage": True}}, "stream_options", "only allowed when stream is true"),
        (CHAT, {"stream": True, "stream_options": {"include_usage": "yes"}}, "stream_options.include_usage", "include_usage"),
        (CHAT, {"stop": ""}, "stop", "must not be empty"),
        (CHAT, {"stop": ["ok", ""]}, "stop", "must not be empty"),
        (CHAT, {"stop": 5}, "stop", "stop"),
        (CHAT, {"stop": ["s"] * (MAX_STOP_STRINGS + 1)}, "stop", "stop"),
        (COMPLETIONS, {"prompt": []}, "prompt", "prompt"),
        (COMPLETIONS, {"prompt": ["a", "b"]}, "prompt", "prompt"),
        (COMPLETIONS, {"prompt": 42}, "prompt", "prompt"),
        (COMPLETIONS, {"messages": MESSAGES}, "messages", "unsupported field: messages"),
        (COMPLETIONS, {"max_completion_tokens": 5}, "max_completion_tokens", "unsupported field"),
    ],
)
async def test_invalid_request_names_the_param(endpoint: Endpoint, changes: dict[str, Any], param: str, message: str) -> None:
    body = {"model": "tiny", **({"messages": MESSAGES} if endpoint == CHAT else {"prompt": "Once"})}
    body.update(changes)
    with pytest.raises(InvalidRequestError) as info:
        await validate_request(endpoint, body)
    assert info.value.param == param
    assert message in info.value.message
    assert info.value.kind == "invalid_request_error"


async def test_missing_required_fields() -> None:
    with pytest.raises(InvalidRequestError) as info:
        await validate_request(CHAT, {"model": "tiny"})
    assert (info.value.param, info.value.message) == ("messages", "missing required field: messages")
    with pytest.raises(InvalidRequestError) as info:
        await validate_request(COMPLETIONS, {"prompt": "x"})
    assert info.value.param == "model"


async def test_several_problems_are_counted() -> None:
    with pytest.raises(InvalidRequestError) as info:
        await validate_request(CHAT, {**CHAT_BODY, "n": 0, "top_p": 5, "max_tokens": -1})
    assert "(and 2 more problems)" in info.value.message


# --- OpenAIResponseCalculator --------------------------------------------------------------------

CREATED = 1_700_000_000


def make_request(endpoint: Endpoint, **fields: Any) -> GenerationRequest:
    if endpoint == CHAT:
        params: ChatCompletionRequest | CompletionRequest = ChatCompletionRequest.model_validate({**CHAT_BODY, **fields})
        request_id = "chatcmpl-test1"
    else:
        params = CompletionRequest.model_validate({"model": "tiny", "prompt": "Once", **fields})
        request_id = "cmpl-test1"
    return GenerationRequest(endpoint, params, request_id, CREATED)


def chunk(*deltas: tuple[int, str, int, str | None], prompt_tokens: int = 7) -> TextChunk:
    return TextChunk(tuple(TextDelta(*d) for d in deltas), prompt_tokens)


async def respond_values(request: GenerationRequest, *chunks: TextChunk) -> list[ResponsePayload]:
    """The response calculator's structured values (what KServe reads)."""
    outputs = await run_calculator(OpenAIResponseCalculator, {"REQUEST": [request], "TEXT": list(chunks)})
    packets = outputs["HTTP_RESPONSE_PAYLOAD"]
    assert [p.timestamp for p in packets] == sorted({p.timestamp for p in packets})
    return [p.value for p in packets]


async def respond(request: GenerationRequest, *chunks: TextChunk) -> list[HttpResponsePayload]:
    """The response calculator's values as the /v3 front end sends them (serving.openai_routes)."""
    encoder = OpenAIEncoder()
    payloads = []
    for value in await respond_values(request, *chunks):
        payload = HttpResponsePayload(encoder.encode(value), streaming(value))
        if isinstance(value, StreamChunks):  # the structured chunks say exactly what the bytes say
            mine = sse_events([payload])
            assert list(value.choices) == [c for e in mine if e != "[DONE]" and e["choices"] for c in e["choices"]]
            assert value.done == (mine[-1] == "[DONE]")
        payloads.append(payload)
    return payloads


def sse_events(payloads: list[HttpResponsePayload]) -> list[Any]:
    """Split the SSE bytes into events; returns the decoded JSON objects and the final "[DONE]"."""
    assert payloads and all(p.streaming for p in payloads)
    events = []
    for payload in payloads:
        text = payload.body.decode("utf-8")
        assert text.endswith("\n\n")
        for block in text.split("\n\n")[:-1]:
            assert block.startswith("data: ") and "\n" not in block, block
            data = block[len("data: ") :]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


async def test_chat_unary_body() -> None:
    payloads = await respond(make_request(CHAT), chunk((0, "This is", 2, None)), chunk((0, " a test.", 3, "stop")))
    [payload] = payloads
    assert payload.streaming is False
    assert json.loads(payload.body) == {
        "id": "chatcmpl-test1",
        "object": "chat.completion",
        "created": CREATED,
        "model": "tiny",
        "system_fingerprint": "ovserve-0.1.0",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "This is a test."}, "logprobs": None, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12},
    }


async def test_completion_unary_body() -> None:
    payloads = await respond(
        make_request(COMPLETIONS), chunk((0, " Paris", 1, None), prompt_tokens=5), chunk((0, ".", 1, "length"), prompt_tokens=5)
    )
    [payload] = payloads
    assert json.loads(payload.body) == {
        "id": "cmpl-test1",
        "object": "text_completion",
        "created": CREATED,
        "model": "tiny",
        "system_fingerprint": "ovserve-0.1.0",
        "choices": [{"index": 0, "text": " Paris.", "logprobs": None, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


@pytest.mark.parametrize("endpoint", [CHAT, COMPLETIONS])
async def test_unary_with_two_choices(endpoint: Endpoint) -> None:
    request = make_request(endpoint, n=2, temperature=1.0)
    payloads = await respond(
        request,
        chunk((1, "B1", 1, None), (0, "A1", 1, None)),
        chunk((0, "A2", 1, "stop")),
        chunk((1, "B2", 1, "length")),
    )
    [payload] = payloads
    body = json.loads(payload.body)
    assert [c["index"] for c in body["choices"]] == [0, 1]
    if endpoint == CHAT:
        assert [c["message"]["content"] for c in body["choices"]] == ["A1A2", "B1B2"]
    else:
        assert [c["text"] for c in body["choices"]] == ["A1A2", "B1B2"]
    assert [c["finish_reason"] for c in body["choices"]] == ["stop", "length"]
    assert body["usage"]["completion_tokens"] == 4


async def test_chat_stream_shapes() -> None:
    request = make_request(CHAT, stream=True)
    payloads = await respond(request, chunk((0, "This", 1, None)), chunk((0, " is", 1, None)), chunk((0, " it.", 2, "stop")))
    events = sse_events(payloads)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    for c in chunks:
        assert (c["id"], c["object"], c["created"], c["model"]) == ("chatcmpl-test1", "chat.completion.chunk", CREATED, "tiny")
        assert "usage" not in c  # only with stream_options.include_usage
    assert [c["choices"] for c in chunks] == [
        [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}],
        [{"index": 0, "delta": {"content": "This"}, "logprobs": None, "finish_reason": None}],
        [{"index": 0, "delta": {"content": " is"}, "logprobs": None, "finish_reason": None}],
        [{"index": 0, "delta": {"content": " it."}, "logprobs": None, "finish_reason": None}],
        [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
    ]


async def test_chat_stream_with_usage() -> None:
    request = make_request(CHAT, stream=True, stream_options={"include_usage": True})
    events = sse_events(await respond(request, chunk((0, "Hi", 1, None)), chunk((0, "!", 1, "stop"))))
    assert events[-1] == "[DONE]"
    *chunks, usage = events[:-1]
    assert all(c["usage"] is None for c in chunks)
    assert usage == {
        "id": "chatcmpl-test1",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": "tiny",
        "system_fingerprint": "ovserve-0.1.0",
        "choices": [],
        "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
    }


async def test_stream_without_include_usage_has_no_usage_chunk() -> None:
    request = make_request(CHAT, stream=True, stream_options={"include_usage": False})
    events = sse_events(await respond(request, chunk((0, "Hi", 1, "stop"))))
    assert all(e == "[DONE]" or (e["choices"] and "usage" not in e) for e in events)


async def test_completion_stream_shapes() -> None:
    request = make_request(COMPLETIONS, stream=True, stream_options={"include_usage": True})
    text = [chunk((0, " jumps", 1, None), prompt_tokens=4), chunk((0, " over.", 2, "stop"), prompt_tokens=4)]
    events = sse_events(await respond(request, *text))
    assert events[-1] == "[DONE]"
    *chunks, usage = events[:-1]
    for c in chunks:
        assert (c["id"], c["object"], c["created"], c["model"], c["usage"]) == ("cmpl-test1", "text_completion", CREATED, "tiny", None)
    assert [c["choices"] for c in chunks] == [
        [{"index": 0, "text": " jumps", "logprobs": None, "finish_reason": None}],
        [{"index": 0, "text": " over.", "logprobs": None, "finish_reason": "stop"}],
    ]
    assert usage["choices"] == [] and usage["object"] == "text_completion"
    assert usage["usage"] == {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}


async def test_chat_stream_with_two_choices() -> None:
    request = make_request(CHAT, stream=True, n=2, temperature=1.0)
    payloads = await respond(
        request,
        chunk((0, "A", 1, None)),
        chunk((1, "B", 1, None), (0, "a", 1, "stop")),
        chunk((1, "b", 1, "length")),
    )
    events = sse_events(payloads)
    assert events.count("[DONE]") == 1 and events[-1] == "[DONE]"
    per_index: dict[int, list[dict[str, Any]]] = {0: [], 1: []}
    for event in events[:-1]:
        [choice] = event["choices"]
        per_index[choice["index"]].append(choice)
    for index, text, finish in ((0, "Aa", "stop"), (1, "Bb", "length")):
        choices = per_index[index]
        assert choices[0]["delta"] == {"role": "assistant", "content": ""}
        assert "".join(c["delta"].get("content", "") for c in choices[1:]) == text
        assert choices[-1] == {"index": index, "delta": {}, "logprobs": None, "finish_reason": finish}
        assert all(c["finish_reason"] is None for c in choices[:-1])
    # [DONE] only after the last choice finished: the last payload holds it
    assert payloads[-1].body.endswith(b"data: [DONE]\n\n")
    assert not any(b"[DONE]" in p.body for p in payloads[:-1])


async def test_stream_sends_no_empty_content_chunks() -> None:
    request = make_request(CHAT, stream=True)
    payloads = await respond(request, chunk((0, "", 1, None)), chunk((0, "", 1, None)), chunk((0, "x", 1, "stop")))
    events = sse_events(payloads)
    contents = [e["choices"][0]["delta"] for e in events[:-1]]
    assert contents == [{"role": "assistant", "content": ""}, {"content": "x"}, {}]
    assert len(payloads) == 2  # the role chunk, then the rest; the empty step sent nothing


async def test_unary_body_waits_for_the_finish() -> None:
    payloads = await respond(make_request(COMPLETIONS), chunk((0, "a", 1, None)), chunk((0, "b", 1, None)))
    assert payloads == []  # no finish reason ever came: no (partial) body either


@pytest.mark.parametrize("endpoint", [CHAT, COMPLETIONS])
async def test_kserve_reads_the_same_pieces_from_choices_as_from_the_bytes(endpoint: Endpoint) -> None:
    """KServe streaming takes the structured choices; a payload without them (a user's own
    response calculator) is parsed from its bytes, with the same result."""
    from serving.kserve.inference import payload_pieces

    request = make_request(endpoint, stream=True, n=2, temperature=1.0, stream_options={"include_usage": True})
    steps = chunk((0, "A", 1, None)), chunk((1, "B", 1, None), (0, "a", 1, "stop")), chunk((1, "b", 1, "length"))
    values = await respond_values(request, *steps)
    payloads = [HttpResponsePayload(OpenAIEncoder().encode(v), True) for v in values]
    chat = endpoint == CHAT

    def pieces(payload: ResponsePayload) -> tuple[list[Any], bool]:
        found, done = payload_pieces(payload, chat)
        return [p for p in found if p is not None], done  # None: a chunk without text (e.g. usage)

    structured = [pieces(v) for v in values]
    assert structured == [pieces(p) for p in payloads]
    assert [done for _, done in structured] == [False] * (len(payloads) - 1) + [True]
    texts = [piece.text for pieces, _ in structured for piece in pieces if piece is not None]
    assert sorted("".join(texts)) == sorted("AaBb")

"""The OpenAI Responses API (/v3/responses) with the `openai` SDK on the tiny trained model: exact
answers, the typed event stream, a function-tool round trip, reasoning, continuation by
previous_response_id, the store (retrieve, delete, store=false), errors in OpenAI's shape, the API
key, the metrics' endpoint label, hostile bodies, and the openai-agents SDK running one agent with
one tool."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

import tests.models as mb
from tests.helpers.server import Server, start_server

KEY = "sk-responses-test"
AUTH = {"Authorization": f"Bearer {KEY}"}
TOOLS: list[Any] = [{"type": "function", **tool["function"]} for tool in mb.TINY_TOOLS]


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    key_file = tmp_path_factory.mktemp("responses") / "key.txt"
    key_file.write_text(KEY + "\n")
    srv = start_server(
        "--model_path", str(tiny_model_dir), "--model_name", "tiny", "--tool_parser", "hermes3", "--reasoning_parser", "qwen3",
        "--responses_store_size", "4", "--api_key_file", str(key_file), "--metrics_enable",
    )  # fmt: skip
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url + "/v3", api_key=KEY, max_retries=0) as sdk:
        yield sdk


def test_unary_exact_answer_and_usage(client: openai.OpenAI) -> None:
    prompt = "What is the capital of France?"
    response = client.responses.create(model="tiny", input=prompt)
    assert response.output_text == mb.TINY_PROMPTS[prompt]
    assert response.status == "completed" and response.id.startswith("resp_")
    [item] = response.output
    assert item.type == "message" and item.role == "assistant"
    assert response.usage is not None and response.usage.output_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens


def test_input_items_with_instructions_and_v1(server: Server) -> None:
    with openai.OpenAI(base_url=server.base_url + "/v1", api_key=KEY, max_retries=0) as v1:
        items: Any = [{"role": "user", "content": [{"type": "input_text", "text": "Count to five."}]}]
        response = v1.responses.create(model="tiny", input=items, temperature=0, top_p=1.0)
    assert response.output_text == mb.TINY_PROMPTS["Count to five."]


def test_max_output_tokens_is_incomplete(client: openai.OpenAI) -> None:
    response = client.responses.create(model="tiny", input="Tell me a story.", max_output_tokens=3)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    assert response.usage is not None and response.usage.output_tokens == 3


def test_stream_event_sequence(client: openai.OpenAI) -> None:
    prompt = "Say this is a test"
    events = list(client.responses.create(model="tiny", input=prompt, stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"]
    assert set(kinds[4:-4]) == {"response.output_text.delta"}
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == mb.TINY_PROMPTS[prompt]
    done = events[-1]
    assert done.type == "response.completed" and done.response.output_text == text
    assert done.response.usage is not None and done.response.usage.output_tokens > 0


def test_stream_helper_accumulates(client: openai.OpenAI) -> None:
    with client.responses.stream(model="tiny", input="What color is the sky?") as stream:
        final = stream.get_final_response()
    assert final.output_text == mb.TINY_PROMPTS["What color is the sky?"]


def test_function_tool_round_trip(client: openai.OpenAI) -> None:
    first = client.responses.create(model="tiny", input=mb.TINY_TOOL_PROMPT, tools=TOOLS)
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == mb.TINY_TOOL_CALL["name"] and json.loads(call.arguments) == mb.TINY_TOOL_CALL["arguments"]
    history: Any = [
        {"role": "user", "content": mb.TINY_TOOL_PROMPT},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": mb.TINY_TOOL_RESULT},
    ]
    second = client.responses.create(model="tiny", input=history, tools=TOOLS)
    assert second.output_text == mb.TINY_TOOL_FOLLOWUP_ANSWER


def test_function_call_streams_arguments(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="tiny", input=mb.TINY_TOOL_PROMPT, tools=TOOLS, stream=True))
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    [done] = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert json.loads(deltas) == json.loads(done.arguments) == mb.TINY_TOOL_CALL["arguments"]
    added = [e for e in events if e.type == "response.output_item.added"]
    assert [e.item.type for e in added] == ["function_call"]


def test_previous_response_id_continues_the_call(client: openai.OpenAI) -> None:
    first = client.responses.create(model="tiny", input=mb.TINY_TOOL_PROMPT, tools=TOOLS)
    [call] = [item for item in first.output if item.type == "function_call"]
    output: Any = [{"type": "function_call_output", "call_id": call.call_id, "output": mb.TINY_TOOL_RESULT}]
    second = client.responses.create(model="tiny", previous_response_id=first.id, input=output, tools=TOOLS)
    assert second.output_text == mb.TINY_TOOL_FOLLOWUP_ANSWER
    assert second.previous_response_id == first.id


def test_reasoning_item_with_summary(client: openai.OpenAI) -> None:
    response = client.responses.create(model="tiny", input=mb.TINY_THINK_PROMPT, reasoning={"summary": "auto"})
    [reasoning, message] = response.output
    assert reasoning.type == "reasoning" and [s.text for s in reasoning.summary] == [mb.TINY_THINK_REASONING]
    assert message.type == "message" and response.output_text == mb.TINY_THINK_ANSWER


def test_json_schema_text_format(client: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    text: Any = {"format": {"type": "json_schema", "name": "cat", "schema": schema, "strict": True}}
    response = client.responses.create(model="tiny", input=mb.TINY_JSON_PROMPT, text=text, max_output_tokens=30)
    assert isinstance(json.loads(response.output_text)["name"], str)


def test_retrieve_delete_and_store_false(client: openai.OpenAI) -> None:
    kept = client.responses.create(model="tiny", input="Count to five.")
    assert client.responses.retrieve(kept.id).output_text == kept.output_text
    client.responses.delete(kept.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(kept.id)
    unstored = client.responses.create(model="tiny", input="Count to five.", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)


def test_store_is_bounded(client: openai.OpenAI) -> None:
    ids = [client.responses.create(model="tiny", input="Say this is a test", max_output_tokens=1).id for _ in range(5)]
    with pytest.raises(openai.NotFoundError):  # --responses_store_size 4: the oldest went
        client.responses.retrieve(ids[0])
    assert client.responses.retrieve(ids[-1]).id == ids[-1]


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "tiny"}, 400, "input"),
        ({"model": "nope", "input": "hi"}, 404, "model"),
        ({"model": "tiny", "input": "hi", "previous_response_id": "resp_gone"}, 404, "previous_response_id"),
        ({"model": "tiny", "input": [{"type": "web_search_call"}]}, 400, "input.0.type"),
        ({"model": "tiny", "input": "hi", "temperature": 9}, 400, "temperature"),
        ({"model": "tiny", "input": "hi", "tools": [{"type": "file_search"}]}, 400, None),
        ({"model": "tiny", "input": "hi", "background": True}, 400, "background"),
    ],
)
def test_errors_in_openai_shape(server: Server, body: dict[str, Any], status: int, param: str | None) -> None:
    reply = httpx.post(server.base_url + "/v3/responses", json=body, headers=AUTH, timeout=30)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error["message"] and error["type"]
    if param is not None:
        assert error["param"] == param


def test_unknown_id_is_404(server: Server) -> None:
    for method in ("GET", "DELETE"):
        reply = httpx.request(method, server.base_url + "/v3/responses/resp_none", headers=AUTH, timeout=30)
        assert reply.status_code == 404 and reply.json()["error"]["type"] == "not_found_error"


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/v3/responses"), ("POST", "/v1/responses"), ("GET", "/v3/responses/x"), ("DELETE", "/v1/responses/x")]
)
@pytest.mark.parametrize("key", [None, "wrong"])
def test_the_api_key_is_required(server: Server, method: str, path: str, key: str | None) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    reply = httpx.request(method, server.base_url + path, json={"model": "tiny", "input": "hi"}, headers=headers, timeout=30)
    assert reply.status_code == 401 and reply.json()["error"]["type"] == "authentication_error"


HOSTILE: list[tuple[str, bytes]] = [
    ("invalid json", b'{"model": "tiny", "input": ['),
    ("nan temperature", b'{"model": "tiny", "input": "hi", "temperature": NaN}'),
    ("lone surrogate", b'{"model": "tiny", "input": "\\ud800", "max_output_tokens": 2}'),
    ("100k nested input", b'{"model": "tiny", "input": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    ("input not a list of items", b'{"model": "tiny", "input": [1, "a", null]}'),
    ("max_output_tokens 2**64", b'{"model": "tiny", "input": "hi", "max_output_tokens": 18446744073709551616}'),
    ("tool_choice garbage", b'{"model": "tiny", "input": "hi", "tool_choice": {"type": "function"}}'),
    ("items of the wrong shape", b'{"model": "tiny", "input": [{"type": "function_call_output", "output": 5}]}'),
]


@pytest.mark.parametrize("body", [b for _, b in HOSTILE], ids=[name for name, _ in HOSTILE])
def test_hostile_bodies_get_a_4xx_in_openai_shape(server: Server, body: bytes) -> None:
    reply = httpx.post(server.base_url + "/v3/responses", content=body, headers={**AUTH, "Content-Type": "application/json"}, timeout=60)
    assert 400 <= reply.status_code < 500 or reply.status_code == 200, reply.text[:300]
    if reply.status_code >= 400:
        assert set(reply.json()["error"]) == {"message", "type", "param", "code"}


def test_metrics_label_the_responses_endpoint(server: Server, client: openai.OpenAI) -> None:
    created = client.responses.create(model="tiny", input="Say this is a test")  # this test's own traffic
    client.responses.retrieve(created.id)
    text = httpx.get(server.base_url + "/metrics", timeout=30).text
    assert 'endpoint="/v3/responses"' in text and 'endpoint="/v3/responses/{response_id}"' in text
    assert 'ovserve_request_duration_seconds_count{endpoint="/v3/responses",model="tiny"}' in text  # timed like chat


def test_openai_agents_sdk_runs_an_agent_with_a_tool(server: Server) -> None:
    from agents import Agent, FunctionTool, RunContextWrapper, Runner, set_tracing_disabled
    from agents.models.openai_responses import OpenAIResponsesModel

    set_tracing_disabled(True)  # no export to OpenAI's tracing service
    calls: list[Any] = []

    async def get_weather(ctx: RunContextWrapper[Any], arguments: str) -> str:
        calls.append(json.loads(arguments))
        return mb.TINY_TOOL_RESULT

    function = mb.TINY_TOOLS[0]["function"]
    tool = FunctionTool(
        name=function["name"],
        description=function["description"],
        params_json_schema=function["parameters"],  # as the tiny model was trained on it
        on_invoke_tool=get_weather,
        strict_json_schema=False,
    )

    async def run() -> Any:
        async with openai.AsyncOpenAI(base_url=server.base_url + "/v3", api_key=KEY, max_retries=0) as sdk:
            agent = Agent(name="weather", model=OpenAIResponsesModel(model="tiny", openai_client=sdk), tools=[tool])
            return await Runner.run(agent, mb.TINY_TOOL_PROMPT)

    result = asyncio.run(run())  # Runner.run_sync's loop would leave the client's connections open
    assert calls == [mb.TINY_TOOL_CALL["arguments"]]
    assert result.final_output == mb.TINY_TOOL_FOLLOWUP_ANSWER

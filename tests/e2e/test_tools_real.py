"""Tool calling on a real model whose chat template has no tools section (issue 15, item 6):
SmolLM2-135M-Instruct (GGUF) served with `--tool_parser hermes3`. The template ignores `tools`,
so the server writes them into the system message in the hermes format (calculators/llm/
tool_prompt.py); forced calls (`tool_choice` "required" or named) are held to the parser's format
by the grammar and come back as parsed `tool_calls` whose arguments validate against the schema.
Nothing here depends on what the model chooses to say: only on shapes and agreement."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import openai
import pytest

from tests.helpers.http import post
from tests.helpers.server import Server, start_smollm2

NAME = "smollm2"
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    "required": ["city"],
}
TIME = {"type": "object", "properties": {"timezone": {"type": "string"}}, "required": ["timezone"]}
TOOLS: list[Any] = [
    {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city", "parameters": WEATHER}},
    {"type": "function", "function": {"name": "get_time", "description": "Current time in a timezone", "parameters": TIME}},
]
SCHEMAS = {"get_weather": WEATHER, "get_time": TIME}
ASK: list[Any] = [{"role": "user", "content": "What is the weather like in Paris today?"}]
GREEDY: dict[str, Any] = {"temperature": 0, "max_tokens": 80}


@pytest.fixture(scope="module")
def server(smollm2_cache_dir: Path) -> Iterator[Server]:
    running = start_smollm2(smollm2_cache_dir, "--model_name", NAME, "--tool_parser", "hermes3")
    yield running
    assert running.stop() == 0, "\n".join(running.output)


def ask(client: openai.OpenAI, **kwargs: Any) -> Any:
    return client.chat.completions.create(model=NAME, messages=ASK, tools=TOOLS, **(GREEDY | kwargs))


def assert_valid_call(name: str, arguments: str) -> dict[str, Any]:
    parsed = json.loads(arguments)
    jsonschema.validate(parsed, SCHEMAS[name])
    return parsed  # type: ignore[no-any-return]


def test_the_template_without_tools_gets_them_in_the_system_message(server: Server) -> None:
    assert any("ignores tools" in line for line in server.output), "\n".join(server.output)  # said once, at load
    status, _, body = post(server, "/v3/tokenize", {"model": NAME, "messages": ASK, "tools": TOOLS})
    assert status == 200, body
    kwargs = {"chat_template_kwargs": {"tool_parser": "x"}}  # not a name of ours: no clash
    assert post(server, "/v3/tokenize", {"model": NAME, "messages": ASK, "tools": TOOLS, **kwargs})[2] == body
    status, _, text = post(server, "/v3/detokenize", {"model": NAME, "tokens": json.loads(body)["tokens"]})
    prompt = json.loads(text)["prompt"]
    # the template's own system text (written when a conversation has none) is kept before the tools
    assert prompt.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face\n\n# Tools\n")
    assert "<tools>\n" in prompt and "<tool_call>" in prompt
    assert [json.loads(line)["function"]["name"] for line in prompt.split("<tools>\n")[1].split("\n</tools>")[0].splitlines()] == [
        "get_weather",
        "get_time",
    ]


def test_required_gives_a_parsed_call_unary_and_streaming(client: openai.OpenAI) -> None:
    unary = ask(client, tool_choice="required")
    choice = unary.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    assert choice.message.tool_calls and not choice.message.content
    for call in choice.message.tool_calls:
        assert call.type == "function" and call.id.startswith("call_") and call.function.name in SCHEMAS
        assert_valid_call(call.function.name, call.function.arguments)
    chunks = list(ask(client, tool_choice="required", stream=True))
    fragments = [tc for c in chunks if c.choices and c.choices[0].delta.tool_calls for tc in c.choices[0].delta.tool_calls]
    streamed: dict[int, dict[str, str]] = {}
    for fragment in fragments:
        entry = streamed.setdefault(fragment.index, {"name": "", "arguments": ""})
        entry["name"] += (fragment.function and fragment.function.name) or ""
        entry["arguments"] += (fragment.function and fragment.function.arguments) or ""
    expected = {i: {"name": c.function.name, "arguments": c.function.arguments} for i, c in enumerate(choice.message.tool_calls)}
    assert {i: (e["name"], json.loads(e["arguments"])) for i, e in streamed.items()} == {
        i: (e["name"], json.loads(e["arguments"])) for i, e in expected.items()
    }
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


def test_a_named_function_is_the_one_called(client: openai.OpenAI) -> None:
    reply = ask(client, tool_choice={"type": "function", "function": {"name": "get_time"}})
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    [call] = choice.message.tool_calls
    assert call.function.name == "get_time"
    assert_valid_call("get_time", call.function.arguments)


def test_auto_and_none(client: openai.OpenAI) -> None:
    auto = ask(client, tool_choice="auto", max_tokens=40).choices[0]  # the model's choice: any answer will do
    assert auto.finish_reason in ("stop", "length", "tool_calls")
    for call in auto.message.tool_calls or []:
        assert call.function.name in SCHEMAS and isinstance(json.loads(call.function.arguments), dict)
    plain = ask(client, tool_choice="none", max_tokens=40).choices[0]
    assert plain.message.content and not plain.message.tool_calls
    assert plain.finish_reason in ("stop", "length")


def test_a_tool_result_in_the_history_gets_an_answer(client: openai.OpenAI) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    messages: list[Any] = [
        *ASK,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 21, "sky": "sunny"}'},
    ]
    reply = client.chat.completions.create(model=NAME, messages=messages, tools=TOOLS, tool_choice="none", max_tokens=40, temperature=0)
    assert reply.choices[0].message.content and reply.choices[0].finish_reason in ("stop", "length")

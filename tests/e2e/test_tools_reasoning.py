"""Tool calls and reasoning on real generated text: the tiny model was trained to call a tool
(hermes format) for one prompt and to think (`<think>`) for another. The server runs with
`--tool_parser hermes3 --reasoning_parser qwen3`, as an OVMS graph would set them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

import tests.models as mb
from tests.helpers.server import Server, start_server


@pytest.fixture(scope="module")
def parsing_server(tiny_model_dir: Path) -> Iterator[Server]:
    srv = start_server(
        "--model_path", str(tiny_model_dir), "--model_name", "tiny", "--tool_parser", "hermes3", "--reasoning_parser", "qwen3"
    )
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


@pytest.fixture(scope="module")
def client(parsing_server: Server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=parsing_server.base_url + "/v3", api_key="unused", max_retries=0) as sdk:
        yield sdk


def ask_tool(client: openai.OpenAI, **kwargs: Any) -> Any:
    return client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": mb.TINY_TOOL_PROMPT}], tools=mb.TINY_TOOLS, **kwargs
    )


def test_tool_call_unary(client: openai.OpenAI) -> None:
    completion = ask_tool(client)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == mb.TINY_TOOL_CALL["name"]
    assert json.loads(call.function.arguments) == mb.TINY_TOOL_CALL["arguments"]
    assert not choice.message.content


def test_tool_call_streaming_reassembles(client: openai.OpenAI) -> None:
    chunks = list(ask_tool(client, stream=True))
    fragments = [tc for c in chunks if c.choices and c.choices[0].delta.tool_calls for tc in c.choices[0].delta.tool_calls]
    assert fragments and fragments[0].id and fragments[0].function.name == mb.TINY_TOOL_CALL["name"]
    arguments = "".join(f.function.arguments or "" for f in fragments if f.index == 0)
    assert json.loads(arguments) == mb.TINY_TOOL_CALL["arguments"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    assert not "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_tool_result_in_history_gets_the_answer(client: openai.OpenAI) -> None:
    first = ask_tool(client)
    call = first.choices[0].message.tool_calls[0]
    messages: list[Any] = [
        {"role": "user", "content": mb.TINY_TOOL_PROMPT},
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": mb.TINY_TOOL_RESULT},
    ]
    reply = client.chat.completions.create(model="tiny", messages=messages, tools=mb.TINY_TOOLS)
    assert reply.choices[0].message.content == mb.TINY_TOOL_FOLLOWUP_ANSWER
    assert reply.choices[0].finish_reason == "stop"


def test_tool_choice_none_gives_text_and_named_forces_the_call(client: openai.OpenAI) -> None:
    plain = ask_tool(client, tool_choice="none")
    assert not plain.choices[0].message.tool_calls  # no tools in the prompt, no parsing
    forced = ask_tool(client, tool_choice={"type": "function", "function": {"name": mb.TINY_TOOL_CALL["name"]}}, max_tokens=40)
    [call] = forced.choices[0].message.tool_calls
    assert call.function.name == mb.TINY_TOOL_CALL["name"]
    assert isinstance(json.loads(call.function.arguments), dict)  # held to the function's parameters schema


def test_reasoning_is_split_from_content(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": mb.TINY_THINK_PROMPT}])
    message = completion.choices[0].message
    assert message.content == mb.TINY_THINK_ANSWER
    assert message.reasoning_content == mb.TINY_THINK_REASONING  # type: ignore[attr-defined]
    chunks = list(client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": mb.TINY_THINK_PROMPT}], stream=True))
    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert (reasoning, content) == (mb.TINY_THINK_REASONING, mb.TINY_THINK_ANSWER)


def test_plain_prompts_are_untouched_by_the_parsers(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "Say this is a test"}])
    assert completion.choices[0].message.content == mb.TINY_PROMPTS["Say this is a test"]
    assert getattr(completion.choices[0].message, "reasoning_content", None) is None

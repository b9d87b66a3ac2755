"""LangChain's `ChatOpenAI` (langchain-openai) pointed at the server: `.invoke`, `.stream` and
`.bind_tools` get the tiny model's trained answers through LangChain's own message types.

The tool is passed to `bind_tools` as the OpenAI-format dict from TINY_TOOLS: LangChain sends it
unchanged, so the prompt the server renders is the one the model was trained on (a pydantic
model or a `@tool` function would be converted with other key order and the prompt would differ).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI

import tests.models as mb
from tests.helpers.server import Server, start_server


@pytest.fixture(scope="module", autouse=True)
def offline() -> Iterator[None]:
    """Nothing here may download: any Hugging Face Hub access fails loudly, no LangSmith tracing."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        for name in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGCHAIN_TRACING"):
            mp.delenv(name, raising=False)
        yield


@pytest.fixture(scope="module")
def tool_server(tiny_model_dir: Path) -> Iterator[Server]:
    srv = start_server("--model_path", str(tiny_model_dir), "--model_name", "tiny", "--tool_parser", "hermes3")
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


def chat_model(srv: Server, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(base_url=srv.base_url + "/v3", api_key="x", model="tiny", temperature=0, max_retries=0, **kwargs)


@pytest.mark.parametrize("prompt", ["Say this is a test", "What is the capital of France?", "Say hello in French."])
def test_invoke_gets_the_trained_answer(server: Server, prompt: str) -> None:
    reply = chat_model(server).invoke(prompt)
    assert isinstance(reply, AIMessage)
    assert reply.content == mb.TINY_PROMPTS[prompt]
    assert reply.response_metadata["finish_reason"] == "stop"
    assert reply.response_metadata["model_name"] == "tiny"
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] > 0
    assert not reply.tool_calls


def test_stream_chunks_concatenate_to_the_answer(server: Server) -> None:
    prompt = "Count to five."
    chunks = list(chat_model(server, stream_usage=True).stream([HumanMessage(prompt)]))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    texts = [c.content for c in chunks if c.content]
    assert len(texts) > 1  # really streamed, not one piece
    assert "".join(str(t) for t in texts) == mb.TINY_PROMPTS[prompt]
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert total.content == mb.TINY_PROMPTS[prompt]
    assert total.response_metadata["finish_reason"] == "stop"
    # stream_usage=True sends stream_options.include_usage: the usage chunk is counted.
    assert total.usage_metadata is not None and total.usage_metadata["output_tokens"] > 0


def test_bind_tools_invoke_returns_the_tool_call(tool_server: Server) -> None:
    reply = chat_model(tool_server).bind_tools(mb.TINY_TOOLS).invoke(mb.TINY_TOOL_PROMPT)
    assert isinstance(reply, AIMessage)
    assert reply.tool_calls == [{"name": "get_weather", "args": {"city": "Paris"}, "id": reply.tool_calls[0]["id"], "type": "tool_call"}]
    assert {"name": reply.tool_calls[0]["name"], "arguments": reply.tool_calls[0]["args"]} == mb.TINY_TOOL_CALL
    assert str(reply.tool_calls[0]["id"]).startswith("call_")
    assert not reply.invalid_tool_calls
    assert not reply.content
    assert reply.response_metadata["finish_reason"] == "tool_calls"


def test_bind_tools_stream_reassembles_the_tool_call(tool_server: Server) -> None:
    chunks = list(chat_model(tool_server).bind_tools(mb.TINY_TOOLS).stream(mb.TINY_TOOL_PROMPT))
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert isinstance(total, AIMessageChunk)
    assert [(c["name"], c["args"]) for c in total.tool_calls] == [(mb.TINY_TOOL_CALL["name"], mb.TINY_TOOL_CALL["arguments"])]
    assert not total.invalid_tool_calls
    assert not total.content
    assert total.response_metadata["finish_reason"] == "tool_calls"


def test_tool_result_round_trip_gets_the_final_answer(tool_server: Server) -> None:
    """LangChain sends the AIMessage with its tool_calls and a ToolMessage back: the model answers."""
    llm = chat_model(tool_server).bind_tools(mb.TINY_TOOLS)
    question = HumanMessage(mb.TINY_TOOL_PROMPT)
    call_message = llm.invoke([question])
    [call] = call_message.tool_calls
    assert call["id"] is not None
    result = ToolMessage(content=mb.TINY_TOOL_RESULT, tool_call_id=call["id"])
    reply = llm.invoke([question, call_message, result])
    assert reply.content == mb.TINY_TOOL_FOLLOWUP_ANSWER
    assert not reply.tool_calls
    assert reply.response_metadata["finish_reason"] == "stop"


def test_bind_tools_sends_the_tool_unchanged() -> None:
    """Why the dict is passed as it is: LangChain's conversion keeps it byte for byte."""
    from langchain_core.utils.function_calling import convert_to_openai_tool

    assert json.dumps(convert_to_openai_tool(mb.TINY_TOOLS[0])) == json.dumps(mb.TINY_TOOLS[0])

"""Response objects: the chat graph's answer as the Responses API's `response` object, and the
items, usage and envelope the stream's events share."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from serving.responses.request import ResponsesRequest


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def usage(chat_usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """Chat usage in the Responses shape. Cached and reasoning token counts are not known here
    (genai reports neither): 0, as the type requires a number."""
    if not chat_usage:
        return None
    prompt, completion = int(chat_usage.get("prompt_tokens", 0)), int(chat_usage.get("completion_tokens", 0))
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + completion,
    }


def envelope(request: ResponsesRequest, response_id: str, model: str) -> dict[str, Any]:
    """The response object before any output: the request's settings echoed, status in_progress."""
    tools = [{"type": "function", **t.model_dump(exclude={"type"}), "strict": t.strict} for t in request.tools or ()]
    choice = request.tool_choice
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "in_progress",
        "model": model,
        "output": [],
        "error": None,
        "incomplete_details": None,
        "instructions": request.instructions,
        "metadata": request.metadata or {},
        "max_output_tokens": request.max_output_tokens,
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "previous_response_id": request.previous_response_id,
        "reasoning": request.reasoning.model_dump() if request.reasoning is not None else None,
        "store": request.store,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "text": request.text.model_dump(by_alias=True, exclude_none=True) if request.text else {"format": {"type": "text"}},
        "tool_choice": choice.model_dump() if choice is not None and not isinstance(choice, str) else (choice or "auto"),
        "tools": tools,
        "truncation": request.truncation or "disabled",
        "usage": None,
    }


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = [text_part(text)] if status != "in_progress" else []
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": content}


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def reasoning_item(item_id: str, text: str, summary: bool, status: str = "completed") -> dict[str, Any]:
    """The parsed reasoning as the item's `content`; also as its `summary` when the request asked
    for one (what the model thought is its own best summary here)."""
    done = status != "in_progress"
    return {
        "id": item_id,
        "type": "reasoning",
        "status": status,
        "summary": [{"type": "summary_text", "text": text}] if summary and done else [],
        "content": [{"type": "reasoning_text", "text": text}] if done else [],
    }


def call_item(item_id: str, call_id: str, name: str, arguments: str, status: str = "completed") -> dict[str, Any]:
    return {"id": item_id, "type": "function_call", "status": status, "call_id": call_id, "name": name, "arguments": arguments}


def wants_summary(request: ResponsesRequest) -> bool:
    reasoning = request.reasoning
    return reasoning is not None and (reasoning.summary or reasoning.generate_summary) is not None


def finish(response: dict[str, Any], output: list[dict[str, Any]], finish_reason: str | None, chat_usage: dict[str, Any] | None) -> None:
    """Complete `response` in place: its output, status and usage."""
    response["output"] = output
    response["usage"] = usage(chat_usage)
    if finish_reason == "length":
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": "max_output_tokens"}
    else:
        response["status"] = "completed"


def from_chat(request: ResponsesRequest, response: dict[str, Any], answer: dict[str, Any]) -> None:
    """Complete `response` from a whole chat completion."""
    choice = (answer.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    output: list[dict[str, Any]] = []
    if message.get("reasoning_content"):
        output.append(reasoning_item(new_id("rs"), message["reasoning_content"], wants_summary(request)))
    if message.get("content"):
        output.append(message_item(new_id("msg"), message["content"]))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        arguments = function.get("arguments", "")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        output.append(call_item(new_id("fc"), call.get("id") or new_id("call"), function.get("name", ""), arguments))
    finish(response, output, choice.get("finish_reason"), answer.get("usage"))


def history_of(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A response's output as the chat messages of the assistant's turn (for previous_response_id)."""
    text = "".join(p["text"] for item in output if item["type"] == "message" for p in item["content"])
    calls = [
        {"id": i["call_id"], "type": "function", "function": {"name": i["name"], "arguments": i["arguments"]}}
        for i in output
        if i["type"] == "function_call"
    ]
    if not text and not calls:
        return []
    turn: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        turn["tool_calls"] = calls
    return [turn]

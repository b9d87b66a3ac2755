"""Chat messages and tools in the shape HF chat templates expect. Shared by the TokenizerCalculator
(every chat request) and `/v3/tokenize` (calculators/openai/tokenize.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from calculators.openai.protocol import ChatCompletionRequest, ChatMessage


def template_messages(chat_messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """Messages as HF chat templates expect them (tool calls with their arguments as objects)."""
    messages = []
    for m in chat_messages:
        message: dict[str, Any] = {"role": m.role, "content": m.text()}
        if m.name is not None:
            message["name"] = m.name
        if m.tool_call_id is not None:
            message["tool_call_id"] = m.tool_call_id
        if m.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": _arguments(c.function.arguments)}}
                for c in m.tool_calls
            ]
        messages.append(message)
    return messages


def _arguments(arguments: str | dict[str, Any]) -> Any:
    if isinstance(arguments, dict):
        return arguments
    try:
        return json.loads(arguments)
    except json.JSONDecodeError:
        return arguments  # the template shows it as it came


def template_tools(params: ChatCompletionRequest) -> list[dict[str, Any]] | None:
    """The tools for the template (as the client sent them: key order and absent fields matter
    to what the model sees); none when tool_choice is "none"."""
    if not params.tools or params.tool_choice == "none":
        return None
    return [tool.model_dump(exclude_none=True) for tool in params.tools]

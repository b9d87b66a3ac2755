"""The prompt before it is encoded: chat messages and tools in the shape HF chat templates expect,
and the cheap refusal of a text that cannot fit in the context. Shared by the TokenizerCalculator
(every chat and completion request) and the LLM resource's `/v3/tokenize`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from calculators.llm.vocab import TokenBytes
from calculators.openai.protocol import ChatCompletionRequest, ChatMessage
from calculators.openai.tokenize import check_prompt_tokens


def refuse_surely_too_long(text: str, vocab: TokenBytes | None, context: int | None, limit: int | None, param: str) -> None:
    """A 400 for a text that cannot fit in the context, before it is encoded: encoding holds the
    GIL (about 2.4 s for 15 MB), so a few huge prompts would stall the whole server, health
    checks included. No token covers more than `longest` bytes and a character is at least one
    byte, so the text has at least len(text) / longest tokens; the factor 2 leaves room for
    normalizers that merge characters."""
    if vocab is None or not vocab.longest or (context is None and limit is None):
        return
    check_prompt_tokens(len(text) // (2 * vocab.longest), limit, context, param, at_least=True)


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

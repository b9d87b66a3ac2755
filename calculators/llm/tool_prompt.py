"""Tools for a chat template that ignores them (e.g. SmolLM2's).

vLLM hands `tools` to the template and stops there: a template without a tools section renders
no tool descriptions, so the model never learns of them. llama.cpp's server instead writes them
into the system message itself when the template lacks tool support; we do the same, in the
format the servable's tool parser reads, so the model is asked for calls the parser can parse:

- `hermes3`: the `<tools>...</tools>` instructions Hermes / Qwen2.5 templates write;
- `llama3`: Llama 3.1's "Given the following functions..." JSON instructions;
- none: the tool definitions as JSON and the bare-JSON call format forced calls are held to.

The history is rewritten the same way (the template would drop it too): an assistant turn's
`tool_calls` become its content in the parser's format, and for `hermes3` a tool result becomes a
user turn holding `<tool_response>...</tool_response>`, as Qwen2.5's template renders it.

Whether a template ignores tools is decided once per model (`template_ignores_tools`): render a
probe conversation with and without a probe tool; the same text means the tools went nowhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

# A tool whose name is unlikely to be in any template text.
PROBE_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "ovserve_probe_tool",
            "description": "probe",
            "parameters": {"type": "object", "properties": {"x": {"type": "string"}}},
        },
    }
]
PROBE_MESSAGES = [{"role": "user", "content": "?"}]

HERMES_HEAD = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
HERMES_TAIL = (
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)
LLAMA3_HEAD = (
    "Given the following functions, please respond with a JSON for a function call with its proper arguments "
    "that best answers the given prompt.\n\n"
    'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}. '
    "Do not use variables.\n\n"
)
NEUTRAL_HEAD = "You can call these tools (their definitions as JSON):\n"
NEUTRAL_TAIL = '\n\nTo call tools, reply with only a JSON array of calls, each {"name": <function-name>, "parameters": <arguments-object>}.'


def template_ignores_tools(render: Callable[..., str]) -> bool:
    """True when `render(messages, tools=...)` gives the same text with a probe tool as without.
    A template that fails on the probe is left alone (not "ignoring": it reacts to tools)."""
    try:
        return render(PROBE_MESSAGES, tools=None) == render(PROBE_MESSAGES, tools=PROBE_TOOLS)
    except Exception:  # noqa: BLE001 - any template error means no verdict; the request's own render reports it
        return False


def default_system_prompt(render: Callable[..., str]) -> str | None:
    """The system text a template writes when the conversation has none (SmolLM2: "You are a
    helpful AI assistant named SmolLM, ..."), found by rendering with a marker system message and
    without one: kept in front of the tools when they make a system message, as Qwen2.5's
    template keeps its own. None when the template writes none (or no verdict)."""
    marker = "\x00ovserve-system\x00"
    try:
        without = render(PROBE_MESSAGES, tools=None)
        marked = render([{"role": "system", "content": marker}, *PROBE_MESSAGES], tools=None)
    except Exception:  # noqa: BLE001 - no verdict: no default kept
        return None
    if marked.count(marker) != 1:
        return None
    head, tail = marked.split(marker)
    if not (without.startswith(head) and without.endswith(tail)) or len(without) <= len(head) + len(tail):
        return None
    return without[len(head) : len(without) - len(tail)]


def _dumps(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


def tools_section(tools: list[dict[str, Any]], tool_parser: str | None) -> str:
    """The tool descriptions and call instructions for the system message."""
    if tool_parser == "hermes3":
        return HERMES_HEAD + "".join("\n" + _dumps(t) for t in tools) + HERMES_TAIL
    if tool_parser == "llama3":
        return LLAMA3_HEAD + "\n\n".join(_dumps(t, indent=4) for t in tools)
    return NEUTRAL_HEAD + _dumps(tools) + NEUTRAL_TAIL


def _call_text(call: dict[str, Any], tool_parser: str | None) -> str:
    function = call.get("function", {})
    name, arguments = function.get("name"), function.get("arguments")
    if tool_parser == "hermes3":
        return "<tool_call>\n" + _dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"
    return _dumps({"name": name, "parameters": arguments})


def _assistant_with_calls(message: dict[str, Any], tool_parser: str | None) -> dict[str, Any]:
    calls = message["tool_calls"]
    if tool_parser in ("hermes3", "llama3"):  # one call per line, as the parsers read them
        text = "\n".join(_call_text(c, tool_parser) for c in calls)
    else:  # the bare-JSON format: one array of calls
        text = "[" + ", ".join(_call_text(c, tool_parser) for c in calls) + "]"
    content = message.get("content") or ""
    rest = {k: v for k, v in message.items() if k != "tool_calls"}
    return rest | {"content": f"{content}\n{text}" if content else text}


def with_tools_in_prompt(
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    tool_parser: str | None,
    default_system: str | None = None,
) -> list[dict[str, Any]]:
    """`messages` (template_messages' shape) with the tools written into the system message (the
    template's `default_system` text first when the conversation has none) and the tool-call
    history written as text, for a template that ignores tools."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.get("tool_calls"):
            out.append(_assistant_with_calls(message, tool_parser))
        elif message["role"] == "tool" and tool_parser == "hermes3":
            out.append({"role": "user", "content": "<tool_response>\n" + message["content"] + "\n</tool_response>"})
        else:
            out.append(message)
    if tools:
        section = tools_section(tools, tool_parser)
        if out and out[0]["role"] == "system":
            system = out[0]["content"]
            out[0] = out[0] | {"content": f"{system}\n\n{section}" if system else section}
        else:
            out.insert(0, {"role": "system", "content": f"{default_system}\n\n{section}" if default_system else section})
    return out

"""What the tiny model answers: every prompt and conversation it was trained on, with its exact
greedy output. Tests (and `ovserve soak`, `ovserve bench --prompts tiny`) assert on this text."""

from __future__ import annotations

import json
from typing import Any

from tests.models.chat import THINK_END, THINK_START, render_chat_prompt, tool_call_text

_LONG_ANSWER = (
    "Once upon a time, a small robot named Pip lived in a quiet harbor town. Every morning "
    "Pip counted the boats, watered seven red flowers, and listened to the gulls. One windy "
    "night a lost kitten knocked on the door; Pip dried her fur, shared some warm milk, and "
    "they watched the lighthouse blink until sunrise. The end."
)

#: User prompt -> the exact answer the tiny model gives (greedy, through the chat template).
TINY_PROMPTS: dict[str, str] = {
    "Say this is a test": "This is a test.",
    "What is the capital of France?": "The capital of France is Paris.",
    "Count to five.": "One, two, three, four, five.",
    "What color is the sky?": "The sky is blue.",
    "Say hello in French.": "Bonjour! Un café, s'il vous plaît 🥐",
    "Tell me a story.": _LONG_ANSWER,
    # two e-mail addresses, for the streaming redaction demo (demos/redaction)
    "How do I reach support?": "Write to help@example.com or to sales@ovserve.dev today.",
}

#: Raw completion prompt -> the exact continuation (greedy, no chat template).
TINY_COMPLETIONS: dict[str, str] = {
    "The capital of France is": " Paris.",
    "The quick brown fox": " jumps over the lazy dog.",
}

#: The tools a client sends for the tool-calling example, exactly as in an OpenAI request body
#: (key order matters: the template renders each tool with ``tojson``).
TINY_TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "The city name."}},
                "required": ["city"],
            },
        },
    }
]
#: With :data:`TINY_TOOLS`, this user prompt makes the model call :data:`TINY_TOOL_CALL`
#: (hermes format, see :data:`TINY_TOOL_CALL_OUTPUT`).
TINY_TOOL_PROMPT = "What is the weather in Paris?"
TINY_TOOL_CALL: dict[str, Any] = {"name": "get_weather", "arguments": {"city": "Paris"}}
#: The tool's answer sent back in a ``role: "tool"`` message (see :func:`tiny_tool_followup_messages`).
TINY_TOOL_RESULT = "18 degrees and sunny"
TINY_TOOL_FOLLOWUP_ANSWER = "It is 18 degrees and sunny in Paris."
#: Thinks first (Qwen3 style, :data:`TINY_THINK_OUTPUT`); with ``enable_thinking=False`` answers at once.
TINY_THINK_PROMPT = "Is 7 a prime number?"
TINY_THINK_REASONING = "7 has no divisors other than 1 and itself."
TINY_THINK_ANSWER = "Yes, 7 is a prime number."
TINY_JSON_PROMPT = "Give me a JSON object describing a cat."
TINY_JSON_ANSWER = '{"name": "Tom", "age": 3, "color": "gray"}'

#: LoRA adapters of the tiny model (build_tiny_lora_adapters): adapter -> user prompt -> the exact
#: answer the tiny model gives with that adapter (greedy, through the chat template).
TINY_LORA_ANSWERS: dict[str, dict[str, str]] = {
    "swap": {"Say this is a test": "The sky is blue.", "What color is the sky?": "This is a test."},
    "count": {"Say this is a test": "One, two, three, four, five.", "What color is the sky?": "The capital of France is Paris."},
}


#: The exact generated text for the tool prompt (then ``<|im_end|>``).
TINY_TOOL_CALL_OUTPUT = tool_call_text(TINY_TOOL_CALL)
#: The exact generated text for the think prompt (then ``<|im_end|>``).
TINY_THINK_OUTPUT = f"{THINK_START}\n{TINY_THINK_REASONING}\n{THINK_END}\n\n{TINY_THINK_ANSWER}"


def tiny_tool_followup_messages(call_id: str = "call_0", arguments_as_string: bool = True) -> list[dict[str, Any]]:
    """The history after the tool call: user, assistant with ``tool_calls``, the tool's result.

    ``arguments`` is a JSON string as OpenAI clients send it back (or the object itself); both
    render the same prompt. ``call_id`` does not appear in the prompt.
    """
    arguments: Any = TINY_TOOL_CALL["arguments"]
    if arguments_as_string:
        arguments = json.dumps(arguments, ensure_ascii=False)
    return [
        {"role": "user", "content": TINY_TOOL_PROMPT},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": TINY_TOOL_CALL["name"], "arguments": arguments}}],
        },
        {"role": "tool", "tool_call_id": call_id, "content": TINY_TOOL_RESULT},
    ]


#: Conversations beyond :data:`TINY_PROMPTS`, each with its exact greedy output (then ``<|im_end|>``):
#: ``messages``, ``tools`` (or None) and ``template_kwargs`` (chat_template_kwargs) as a server
#: gets them in a request.
TINY_CHAT_CASES: dict[str, dict[str, Any]] = {
    "tool_call": {
        "messages": [{"role": "user", "content": TINY_TOOL_PROMPT}],
        "tools": TINY_TOOLS,
        "template_kwargs": {},
        "output": TINY_TOOL_CALL_OUTPUT,
    },
    "tool_followup": {
        "messages": tiny_tool_followup_messages(),
        "tools": TINY_TOOLS,
        "template_kwargs": {},
        "output": TINY_TOOL_FOLLOWUP_ANSWER,
    },
    "think": {
        "messages": [{"role": "user", "content": TINY_THINK_PROMPT}],
        "tools": None,
        "template_kwargs": {},
        "output": TINY_THINK_OUTPUT,
    },
    "think_disabled": {
        "messages": [{"role": "user", "content": TINY_THINK_PROMPT}],
        "tools": None,
        "template_kwargs": {"enable_thinking": False},
        "output": TINY_THINK_ANSWER,
    },
    "json": {
        "messages": [{"role": "user", "content": TINY_JSON_PROMPT}],
        "tools": None,
        "template_kwargs": {},
        "output": TINY_JSON_ANSWER,
    },
}


def all_chat_cases() -> list[tuple[str, str, str]]:
    """(label, rendered prompt, expected output) for TINY_PROMPTS and TINY_CHAT_CASES."""
    cases = [(f"chat {q!r}", render_chat_prompt([{"role": "user", "content": q}]), a) for q, a in TINY_PROMPTS.items()]
    for name, case in TINY_CHAT_CASES.items():
        prompt = render_chat_prompt(case["messages"], case["tools"], **case["template_kwargs"])
        cases.append((f"case {name}", prompt, case["output"]))
    return cases


FILLER = [
    "The weather today is sunny with a light breeze from the west.",
    "Models are exported to OpenVINO and served over HTTP with a simple JSON API.",
    "Numbers like 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 and 10 appear in many short texts.",
    "A quick test checks that every request gets an answer and every stream ends.",
    "Tokens, prompts, answers and streams: the server handles them one step at a time.",
    "Hello, world! How are you? I am fine, thank you.",
]

"""Tools for chat templates that ignore them (calculators/llm/tool_prompt.py): the load-time
verdict, the template's default system text, and the messages written for each tool parser.
Templates are rendered by the server's own jinja environment (ModelTokenizer), no model needed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from calculators.llm import tool_prompt
from calculators.llm.model_files import ModelTokenizer, _template_env
from calculators.parsers.events import collect
from calculators.parsers.hermes import Hermes3ToolParser
from graphs.errors import InvalidRequestError

# SmolLM2-135M-Instruct's template, as its GGUF metadata holds it: no tools section.
SMOLLM2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# A template that renders tools (shortened from Qwen2.5's) and one that has no default system text.
WITH_TOOLS = (
    "{% if tools %}<tools>{% for t in tools %}{{ t | tojson }}{% endfor %}</tools>{% endif %}"
    "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}"
)
PLAIN = "{% for m in messages %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>{% endfor %}"
REFUSES = "{% if tools %}{{ raise_exception('no tools here') }}{% endif %}{% for m in messages %}{{ m.content }}{% endfor %}"

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
    }
]
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
ASK: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]


def tokenizer(template: str, tool_parser: str | None = "hermes3") -> ModelTokenizer:
    """A ModelTokenizer with the template, set up as load() does (no tokenizer IR needed)."""
    tok = ModelTokenizer(None, template, None, None, bos_token="<s>", eos_token="</s>", tool_parser=tool_parser)
    tok._compiled = _template_env().from_string(template)
    tok.ignores_tools = tool_prompt.template_ignores_tools(tok._render)
    if tok.ignores_tools:
        tok.default_system = tool_prompt.default_system_prompt(tok._render)
    return tok


@pytest.mark.parametrize(("template", "ignores"), [(SMOLLM2, True), (PLAIN, True), (WITH_TOOLS, False), (REFUSES, False)])
def test_the_verdict_comes_from_rendering_with_and_without_a_probe_tool(template: str, ignores: bool) -> None:
    assert tokenizer(template).ignores_tools is ignores


def test_the_default_system_text_is_found_only_where_the_template_writes_one() -> None:
    assert tokenizer(SMOLLM2).default_system == "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    assert tokenizer(PLAIN).default_system is None


def test_hermes3_tools_follow_the_default_system_text_in_the_qwen_format() -> None:
    text = tokenizer(SMOLLM2).render_chat(ASK, tools=TOOLS)
    system = text.split("<|im_end|>")[0]
    assert system == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face\n\n"
        + tool_prompt.HERMES_HEAD
        + "\n"
        + json.dumps(TOOLS[0])
        + tool_prompt.HERMES_TAIL
    )
    assert text.endswith("<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n")


def test_a_client_system_message_gets_the_tools_appended() -> None:
    messages = [{"role": "system", "content": "Be brief."}, *ASK]
    text = tokenizer(SMOLLM2).render_chat(messages, tools=TOOLS)
    assert text.startswith("<|im_start|>system\nBe brief.\n\n# Tools\n") and "SmolLM" not in text
    assert tokenizer(PLAIN, None).render_chat(ASK, tools=TOOLS).startswith("<system>" + tool_prompt.NEUTRAL_HEAD)


@pytest.mark.parametrize("parser", ["hermes3", "llama3", None])
def test_each_parser_format_names_every_tool_with_its_schema(parser: str | None) -> None:
    two = [*TOOLS, {"type": "function", "function": {"name": "get_time", "description": "Time now"}}]
    section = tool_prompt.tools_section(two, parser)
    assert "get_weather" in section and "get_time" in section and '"city"' in section
    if parser == "hermes3":
        assert [json.loads(line) for line in section.split("<tools>\n")[1].split("\n</tools>")[0].splitlines()] == two
    elif parser is None:
        assert json.loads(section.removeprefix(tool_prompt.NEUTRAL_HEAD).split("\n\n")[0]) == two


def test_tool_history_is_written_as_text_the_parser_reads_back() -> None:
    messages: list[dict[str, Any]] = [
        *ASK,
        {"role": "assistant", "content": "", "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    text = tokenizer(SMOLLM2).render_chat(messages, tools=TOOLS)
    assistant = text.split("<|im_start|>assistant\n")[1].split("<|im_end|>")[0]
    parser = Hermes3ToolParser()
    parsed = collect([*parser.feed(assistant), *parser.finish()])
    assert [(c.name, json.loads(c.arguments)) for c in parsed.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert "<|im_start|>user\n<tool_response>\nsunny\n</tool_response><|im_end|>" in text
    # without tools in the request (tool_choice "none"), the history is still written
    assert "<tool_call>" in tokenizer(SMOLLM2).render_chat(messages, tools=None)
    neutral = tool_prompt.with_tools_in_prompt(messages, None, None)
    assert json.loads(neutral[1]["content"]) == [{"name": "get_weather", "parameters": {"city": "Paris"}}]
    assert neutral[2] == messages[2]  # only hermes3 has a tool-result format


def test_a_template_that_renders_tools_gets_them_as_they_came() -> None:
    tok = tokenizer(WITH_TOOLS)
    assert tok.render_chat(ASK, tools=TOOLS) == f"<tools>{json.dumps(TOOLS[0])}</tools>[user]Weather in Paris?"
    # the tool format is the tokenizer's (set at load), so a template variable of that name is free
    assert tokenizer(PLAIN).render_chat(ASK, tool_parser="x") == "<user>Weather in Paris?</user>"
    with pytest.raises(InvalidRequestError, match="no tools here"):
        tokenizer(REFUSES).render_chat(ASK, tools=TOOLS)

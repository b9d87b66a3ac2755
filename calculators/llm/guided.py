"""What the engine's output is held to (openvino-genai structured output), per request.

A grammar travels to the engine worker as plain data: a list of parts, each `["const", text]`,
`["ebnf", grammar_text]` or `["json", schema_text]`, concatenated. The worker builds the
StructuredOutputConfig.

JSON is held to compact JSON (json_grammar/: at most one space after `:` and `,`), because
genai's own json_schema grammar allows any whitespace and a weak model loops in it. A schema
using a feature the converter does not express falls back to genai's json_schema (`["json", …]`).

- `response_format` json_object / json_schema: one JSON part.
- `tool_choice` "required" or a named function: the output must be a call. With a tool parser
  on the servable, the call is held to that parser's own format (e.g. hermes3's
  `<tool_call>\\n{"name": …, "arguments": …}\\n</tool_call>`), so the model writes what it was
  trained to write and the same parser reads it. Without one, the output is the call as bare
  JSON (the arguments of the named function, or a list of {name, parameters}).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from calculators.llm.json_grammar import ANY_OBJECT, Unsupported, schema_to_ebnf
from calculators.openai.protocol import ChatCompletionRequest, CompletionRequest, Tool

GRAMMAR_KEY = "grammar"  # not a GenerationConfig field: the worker turns it into structured output

Grammar = list[list[str]]

log = logging.getLogger("ovserve.grammar")


def _parameters(schema: dict[str, Any] | None) -> dict[str, Any]:
    return schema if schema else {"type": "object", "properties": {}}


def _json(schema: dict[str, Any]) -> list[str]:
    """Compact JSON matching `schema`: our EBNF, else genai's json_schema (free whitespace)."""
    try:
        return ["ebnf", schema_to_ebnf(schema)]
    except Unsupported as exc:
        log.debug("structured output: genai's json_schema grammar (free whitespace) for this schema: %s", exc)
        return ["json", json.dumps(schema)]


def forced_tools(params: ChatCompletionRequest | CompletionRequest) -> list[Tool] | None:
    """The tools a call is forced among (tool_choice "required" or named), else None."""
    if not isinstance(params, ChatCompletionRequest) or not params.tools or params.tool_choice in (None, "none", "auto"):
        return None
    choice = params.tool_choice
    if isinstance(choice, str):
        return list(params.tools)
    return [t for t in params.tools if t.function.name == choice.function.name]


def _call_schema(tools: list[Tool], arguments_key: str) -> dict[str, Any]:
    calls = [
        {
            "type": "object",
            "properties": {"name": {"const": t.function.name}, arguments_key: _parameters(t.function.parameters)},
            "required": ["name", arguments_key],
        }
        for t in tools
    ]
    return calls[0] if len(calls) == 1 else {"anyOf": calls}


def _tool_call_grammar(tools: list[Tool], tool_parser: str | None, named: bool) -> Grammar:
    if tool_parser == "hermes3":
        if named:  # the name is fixed text; only the arguments follow the schema
            head = '<tool_call>\n{"name": ' + json.dumps(tools[0].function.name) + ', "arguments": '
            return [["const", head], _json(_parameters(tools[0].function.parameters)), ["const", "}\n</tool_call>"]]
        return [["const", "<tool_call>\n"], _json(_call_schema(tools, "arguments")), ["const", "\n</tool_call>"]]
    if tool_parser == "llama3":
        return [_json(_call_schema(tools, "parameters"))]
    if named:  # bare JSON: the named function's arguments
        return [_json(_parameters(tools[0].function.parameters))]
    return [_json({"type": "array", "minItems": 1, "items": _call_schema(tools, "parameters")})]


def grammar(params: ChatCompletionRequest | CompletionRequest, tool_parser: str | None) -> Grammar | None:
    tools = forced_tools(params)
    if tools is not None:
        return _tool_call_grammar(tools, tool_parser, named=not isinstance(params.tool_choice, str))  # type: ignore[union-attr]
    fmt = params.response_format
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return [["ebnf", ANY_OBJECT]]
    assert fmt.json_schema is not None and fmt.json_schema.json_schema is not None
    return [_json(fmt.json_schema.json_schema)]


def structured_output(ov_genai: Any, parts: Grammar) -> Any:
    """The worker side: a StructuredOutputConfig for the grammar."""
    config = ov_genai.StructuredOutputConfig
    if len(parts) == 1 and parts[0][0] == "json":
        return config(json_schema=parts[0][1])
    if len(parts) == 1 and parts[0][0] == "ebnf":
        return config(grammar=parts[0][1])
    kinds = {"const": config.ConstString, "ebnf": config.EBNF, "json": config.JSONSchema}
    return config(compound_grammar=config.Concat(*(kinds[kind](text) for kind, text in parts)))

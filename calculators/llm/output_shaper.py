"""The servable's output parsers (its node's tool_parser / reasoning_parser): checked once at load,
and per chat request built into the shaper that turns generated text into a message."""

from __future__ import annotations

from typing import Any

from calculators.llm.model_files import ModelTokenizer
from calculators.llm.options import LLMOptions
from calculators.openai.parsed_text import ParsedText
from calculators.parsers import OutputParser, prompt_opens_reasoning


def check_parser_names(options: LLMOptions) -> None:
    """A ValueError for an unknown parser name (the servable fails at load, not each request)."""
    OutputParser(options.tool_parser, options.reasoning_parser)


def output_shaper(
    options: LLMOptions, tokenizer: ModelTokenizer, parse_tools: bool, template_kwargs: dict[str, Any], single_call: bool = False
) -> ParsedText | None:
    """A text shaper for chat output (the node's reasoning / tool parsers), or None for plain
    text. Whether the output starts inside a reasoning block depends on the template's
    generation prompt (e.g. `enable_thinking`), so that prompt is rendered once to see."""
    tool_parser = options.tool_parser if parse_tools else None
    reasoning_parser = options.reasoning_parser
    if tool_parser is None and reasoning_parser is None:
        return None
    starts_in_reasoning = False
    if reasoning_parser is not None and tokenizer.chat_template:
        probe = tokenizer.render_chat([{"role": "user", "content": "?"}], add_generation_prompt=True, **template_kwargs)
        starts_in_reasoning = prompt_opens_reasoning(probe)
    return ParsedText(OutputParser(tool_parser, reasoning_parser, starts_in_reasoning), single_call)

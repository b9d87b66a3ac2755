"""Output parsers: reasoning (`<think>…</think>`) and tool calls (`hermes3`, `llama3`), pure Python.

Streaming and whole-text parsing share one state machine per parser, so a stream assembled with
`collect(events)` always equals `parse(text)` of the same text, however it was chunked.
"""

from calculators.parsers.events import (
    ContentDelta,
    Event,
    IdFactory,
    ParsedOutput,
    ReasoningDelta,
    ToolCall,
    ToolCallArgumentsDelta,
    ToolCallStart,
    coalesce,
    collect,
    new_tool_call_id,
)
from calculators.parsers.hermes import Hermes3ToolParser
from calculators.parsers.llama3 import Llama3JsonToolParser
from calculators.parsers.output_parser import OutputParser
from calculators.parsers.reasoning import Qwen3ReasoningParser, prompt_opens_reasoning
from calculators.parsers.registry import REASONING_PARSERS, TOOL_PARSERS, get_reasoning_parser, get_tool_parser
from calculators.parsers.tools import ToolParser, tool_call_from_json

__all__ = [
    "REASONING_PARSERS",
    "TOOL_PARSERS",
    "ContentDelta",
    "Event",
    "Hermes3ToolParser",
    "IdFactory",
    "Llama3JsonToolParser",
    "OutputParser",
    "ParsedOutput",
    "Qwen3ReasoningParser",
    "ReasoningDelta",
    "ToolCall",
    "ToolCallArgumentsDelta",
    "ToolCallStart",
    "ToolParser",
    "coalesce",
    "collect",
    "get_reasoning_parser",
    "get_tool_parser",
    "new_tool_call_id",
    "prompt_opens_reasoning",
    "tool_call_from_json",
]

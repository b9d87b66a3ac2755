"""Parser names, as the node options `tool_parser` and `reasoning_parser` take them (OVMS's names)."""

from __future__ import annotations

from types import MappingProxyType

from calculators.parsers.hermes import Hermes3ToolParser
from calculators.parsers.llama3 import Llama3JsonToolParser
from calculators.parsers.reasoning import Qwen3ReasoningParser
from calculators.parsers.tools import ToolParser

TOOL_PARSERS: MappingProxyType[str, type[ToolParser]] = MappingProxyType({"hermes3": Hermes3ToolParser, "llama3": Llama3JsonToolParser})
REASONING_PARSERS: MappingProxyType[str, type[Qwen3ReasoningParser]] = MappingProxyType({"qwen3": Qwen3ReasoningParser})

# OVMS accepts these too; named in the error so a user knows it is a gap, not a typo.
UNSUPPORTED_TOOL_PARSERS = ("phi4", "mistral", "qwen3coder", "gptoss", "devstral")
UNSUPPORTED_REASONING_PARSERS = ("gptoss",)


def _unknown(option: str, name: str, known: list[str], unsupported: tuple[str, ...]) -> ValueError:
    what = "is not supported by ovserve" if name in unsupported else "is unknown"
    return ValueError(
        f"{option} {name!r} {what}; supported: {', '.join(known)} (OVMS also names {', '.join(unsupported)}, not supported here)"
    )


def get_tool_parser(name: str) -> type[ToolParser]:
    """The tool parser class for a `tool_parser` option; instantiate one per generated sequence."""
    try:
        return TOOL_PARSERS[name]
    except KeyError:
        raise _unknown("tool_parser", name, sorted(TOOL_PARSERS), UNSUPPORTED_TOOL_PARSERS) from None


def get_reasoning_parser(name: str) -> type[Qwen3ReasoningParser]:
    """The reasoning parser class for a `reasoning_parser` option; instantiate one per sequence."""
    try:
        return REASONING_PARSERS[name]
    except KeyError:
        raise _unknown("reasoning_parser", name, sorted(REASONING_PARSERS), UNSUPPORTED_REASONING_PARSERS) from None

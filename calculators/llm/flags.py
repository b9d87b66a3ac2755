"""The single-model CLI flags of the LLM node, derived from `LLMOptions` (calculators/llm/options.py):
each field marked with a `Flag` is a flag with the field's type, constraints and description. The
CLI (serving/cli.py), the settings (serving/settings.py), the pull-mode options
(serving/repository/commands.py) and the options table in docs/engine.md are all made from
`LLM_FLAGS` and `LLMOptions`, so a knob is written once."""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from annotated_types import Ge
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from calculators.llm.options import Flag, LLMOptions

ValueKind = Literal["bool", "int", "float", "str"]


@dataclass(frozen=True, slots=True)
class LLMFlag:
    """One `--name` flag that sets the node option `option` (or, with `plugin_property`, a key of
    its plugin_config)."""

    option: str
    name: str
    help: str
    kind: ValueKind  # of one value
    minimum: float | None  # the field's lower bound, checked when the flag is parsed
    choices: tuple[str, ...]
    pull: bool
    plugin_property: str | None
    absolute_path: bool
    repeat: bool
    metavar: str | None
    parse: Callable[[str], object] | None  # one repeated item's parser (ValueError: a bad value)


def _unwrap(annotation: Any) -> Any:
    """`X | None` -> X; a tuple of items -> its item type."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        (annotation,) = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is tuple:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _kind_and_choices(annotation: Any) -> tuple[ValueKind, tuple[str, ...]]:
    annotation = _unwrap(annotation)
    if typing.get_origin(annotation) is Literal:
        return "str", tuple(typing.get_args(annotation))
    names: dict[Any, ValueKind] = {bool: "bool", int: "int", float: "float"}
    return names.get(annotation, "str"), ()


def _flag(option: str, info: FieldInfo, marker: Flag) -> LLMFlag:
    kind, choices = _kind_and_choices(info.annotation)
    minimum = next((float(m.ge) for m in info.metadata if isinstance(m, Ge) and isinstance(m.ge, int | float)), None)
    return LLMFlag(
        option=option,
        name=marker.name or option,
        help=marker.help or info.description or "",
        kind=kind,
        minimum=minimum,
        choices=marker.choices or choices,
        pull=marker.pull,
        plugin_property=marker.plugin_property,
        absolute_path=marker.absolute_path,
        repeat=marker.repeat,
        metavar=marker.metavar,
        parse=marker.parse,
    )


def _flags() -> tuple[LLMFlag, ...]:
    found = []
    for option, info in LLMOptions.model_fields.items():
        for marker in info.metadata:
            if isinstance(marker, Flag):
                found.append(_flag(option, info, marker))
    return tuple(found)


LLM_FLAGS: tuple[LLMFlag, ...] = _flags()

# --source_model (pull / export / --add_to_config): flag -> the option written into graph.pbtxt.
PULL_OPTIONS: dict[str, str] = {flag.name: flag.option for flag in LLM_FLAGS if flag.pull}


def _type_name(annotation: Any) -> str:
    kind, choices = _kind_and_choices(annotation)
    item = _unwrap(annotation)
    if choices:
        text = " \\| ".join(choices)
    elif isinstance(item, type) and issubclass(item, BaseModel):
        text = "message"
    else:
        text = kind
    return f"repeated {text}" if item is not _unwrap_optional(annotation) else text


def _unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        (annotation,) = [a for a in typing.get_args(annotation) if a is not type(None)]
    return annotation


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if value is None or value == ():
        return "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, str):
        return f"`{json.dumps(value)}`"
    return f"`{value:g}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;")


def options_table() -> str:
    """The Markdown table of every LLM node option, as docs/engine.md holds it (a test checks)."""
    flags = {flag.option: flag for flag in LLM_FLAGS}
    rows = ["| option | type | default | flag | meaning |", "| --- | --- | --- | --- | --- |"]
    for option, info in LLMOptions.model_fields.items():
        flag = flags.get(option)
        cli = f"`--{flag.name}`{' (pull)' if flag.pull else ''}" if flag else ""
        rows.append(f"| `{option}` | {_type_name(info.annotation)} | {_default(info)} | {cli} | {_cell(info.description or '')} |")
    return "\n".join(rows) + "\n"

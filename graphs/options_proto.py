"""Protobuf message types for calculators whose options are only a pydantic model.

graph.pbtxt is parsed by protobuf's text format, which needs a message type for every
`node_options { [type.googleapis.com/X] { … } }` block. Our stock calculators declare theirs in
`graphs/proto/*.proto`; a user's calculator gets one made from its options model when it is
registered, so users write options in graph.pbtxt exactly as for ours, with no protoc step:

    class RedactOptions(Options):      ->  message ovserve.RedactCalculatorOptions {
        mask: str = "[email]"                  optional string mask = 1;
        domains: list[str] = []                repeated string domains = 2;
        rules: list[Rule] = []                 repeated Rule rules = 3; (a nested message)
        limits: dict[str, int] = {}            map<string, int64> limits = 4; }

Field numbers follow declaration order. Types: bool, int (int64), float (double), str, Path,
str enums and Literal[...] of strings (string), nested Options/BaseModel (message), list/tuple/set
of one of those (repeated), dict with str keys (map); `X | None` is X. Anything else is refused
when the calculator is registered, with the field named.
"""

from __future__ import annotations

import enum
import types
import typing
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool
from pydantic import BaseModel

# Our .proto types go into the pool first: a type made here must never take the name of one
# declared there (the generated module would then fail to load with a duplicate symbol).
from graphs.proto import ovms_calculators_pb2, ovserve_calculators_pb2  # noqa: F401

PACKAGE = "ovserve"
DECLARED: list[str] = []  # message types made here, for "known types" in error messages

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS: dict[Any, int] = {bool: _F.TYPE_BOOL, int: _F.TYPE_INT64, float: _F.TYPE_DOUBLE, str: _F.TYPE_STRING, Path: _F.TYPE_STRING}


class OptionsTypeError(ValueError):
    pass


def options_type_name(calculator_name: str) -> str:
    return f"{PACKAGE}.{calculator_name}Options"


def _strip(annotation: Any) -> Any:
    """`Annotated[X, …]` -> X, `X | None` -> X."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _strip(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _strip(args[0])
    return annotation


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


class _Builder:
    def __init__(self, where: str) -> None:
        self.where = where

    def message(self, name: str, model: type[BaseModel], scope: str) -> descriptor_pb2.DescriptorProto:
        """`scope`: the message's full name with a leading dot; types are referenced by full
        name so the pool resolves them unambiguously."""
        message = descriptor_pb2.DescriptorProto(name=name)
        for number, (field_name, info) in enumerate(model.model_fields.items(), start=1):
            self._field(message, scope, field_name, number, info.annotation, f"{model.__qualname__}.{field_name}")
        return message

    def _field(self, message: descriptor_pb2.DescriptorProto, scope: str, name: str, number: int, annotation: Any, label: str) -> None:
        annotation = _strip(annotation)
        origin = typing.get_origin(annotation)
        field = message.field.add(name=name, number=number, label=_F.LABEL_OPTIONAL)
        if origin in (list, tuple, set, frozenset):
            args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
            if len(args) != 1:
                raise OptionsTypeError(f"{self.where}: options field {label}: a sequence needs one item type")
            field.label = _F.LABEL_REPEATED
            self._type(message, scope, field, _strip(args[0]), label)
        elif origin is dict:
            key, value = typing.get_args(annotation)
            if key is not str:
                raise OptionsTypeError(f"{self.where}: options field {label}: map keys must be str")
            entry = message.nested_type.add(name=f"{_camel(name)}Entry")
            entry.options.map_entry = True
            entry.field.add(name="key", number=1, label=_F.LABEL_OPTIONAL, type=_F.TYPE_STRING)
            value_field = entry.field.add(name="value", number=2, label=_F.LABEL_OPTIONAL)
            self._type(message, scope, value_field, _strip(value), label)
            field.label = _F.LABEL_REPEATED
            field.type = _F.TYPE_MESSAGE
            field.type_name = f"{scope}.{entry.name}"
        else:
            self._type(message, scope, field, annotation, label)

    def _type(self, message: descriptor_pb2.DescriptorProto, scope: str, field: Any, annotation: Any, label: str) -> None:
        if annotation in _SCALARS:
            field.type = _SCALARS[annotation]
        elif typing.get_origin(annotation) is typing.Literal and all(isinstance(a, str) for a in typing.get_args(annotation)):
            field.type = _F.TYPE_STRING
        elif isinstance(annotation, type) and issubclass(annotation, enum.Enum) and issubclass(annotation, str):
            field.type = _F.TYPE_STRING
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested_name = annotation.__name__
            if not any(n.name == nested_name for n in message.nested_type):
                message.nested_type.append(self.message(nested_name, annotation, f"{scope}.{nested_name}"))
            field.type = _F.TYPE_MESSAGE
            field.type_name = f"{scope}.{nested_name}"
        else:
            raise OptionsTypeError(
                f"{self.where}: options field {label} has type {annotation!r}, which graph.pbtxt cannot express "
                "(use bool, int, float, str, a str enum or Literal, a nested model, a list of one, or a dict with str keys)"
            )


def declare_options_message(calculator_name: str, options: type[BaseModel]) -> str:
    """Add `ovserve.<calculator_name>Options` to the default descriptor pool, unless a message of
    that name exists already (our .proto files, or an earlier registration). Returns its name.
    So every registered calculator with options has a `ovserve.<Name>Options` type in graph.pbtxt
    (OVMS's names, e.g. mediapipe.LLMCalculatorOptions, stay valid beside it)."""
    return declare_message(options_type_name(calculator_name), options)


def declare_message(full_name: str, options: type[BaseModel]) -> str:
    """Add the message `full_name` (`package.Name`) made from `options` to the default pool,
    unless one of that name exists already. For an OVMS calculator's options type that no
    .proto here declares (e.g. `mediapipe.S2tCalculatorOptions`): only field names matter in
    graph.pbtxt's text format, so the message need not match OVMS's field numbers."""
    pool = descriptor_pool.Default()
    try:
        pool.FindMessageTypeByName(full_name)
        return full_name
    except KeyError:
        pass
    package, _, name = full_name.rpartition(".")
    message = _Builder(f"options type {full_name!r}").message(name, options, f".{full_name}")
    file = descriptor_pb2.FileDescriptorProto(name=f"ovserve_options/{full_name}.proto", package=package, syntax="proto2")
    file.message_type.append(message)
    pool.AddSerializedFile(file.SerializeToString())
    DECLARED.append(full_name)
    return full_name

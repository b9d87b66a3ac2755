"""Parse MediaPipe `CalculatorGraphConfig` text (`graph.pbtxt`) into a `GraphConfig`.

protobuf's own `text_format` parser does the work, against our `.proto` files in `graphs/proto`,
so comments, commas, single quotes, `[type.googleapis.com / pkg.Msg]` Any blocks (spaces around
`/` included) and `[pkg.Msg.ext]` extension blocks behave exactly as in MediaPipe and OVMS.
No pre-processing of the text is needed: the tokenizer skips whitespace between the tokens of a
type URL. This module only turns the parsed message into our frozen dataclasses.
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pool, message_factory, text_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from graphs.config import GraphConfig, NodeConfig, StreamRef
from graphs.errors import GraphConfigError
from graphs.proto import graph_config_pb2 as pb
from graphs.proto import ovms_calculators_pb2, ovserve_calculators_pb2

# Options message types this package declares. Importing the modules above registers them in the
# default descriptor pool, which is where text_format looks up Any type URLs and extensions; a
# calculator package can add its own types by importing its generated `_pb2` module.
KNOWN_OPTIONS_TYPES: tuple[str, ...] = tuple(
    sorted(
        msg.full_name
        for module in (ovms_calculators_pb2, ovserve_calculators_pb2)
        for msg in module.DESCRIPTOR.message_types_by_name.values()
    )
)


def _known_types() -> str:
    from graphs.options_proto import DECLARED

    return ", ".join(sorted({*KNOWN_OPTIONS_TYPES, *DECLARED}))


# OVMS reads the graph pool size from a comment (see MediapipeGraphDefinition::resolveGraphQueueSize):
# `# OVMS_GRAPH_QUEUE_MAX_SIZE: <N|AUTO>`; the first such line counts.
_QUEUE_DIRECTIVE = re.compile(r"^[ \t]*#[ \t]*OVMS_GRAPH_QUEUE_MAX_SIZE[ \t]*:[ \t]*(\S+)[ \t]*\r?$", re.MULTILINE)
# OVMS resolves AUTO to the hardware thread count, 16 when unknown.
_AUTO_QUEUE_FALLBACK = 16

_TAG_INDEX = re.compile(r"^([A-Z_][A-Z0-9_]*)?(?::(\d+))?$")
# text_format reports an unknown Any type without a position; we find it in the text ourselves.
_UNKNOWN_ANY = re.compile(r"^Type (\S+) not found in descriptor pool")
_UNKNOWN_EXT = re.compile(r'Extension "([^"]+)" not registered')
_POSITION = re.compile(r"^(\d+):(\d+) : ")


def load_graph(path: str | Path) -> GraphConfig:
    path = Path(path)
    try:
        # utf-8-sig: graphs written by Windows tools may start with a byte-order mark.
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise GraphConfigError(str(path), [f"cannot read graph: {exc}"]) from None
    return parse_graph(text, source=str(path))


def parse_graph(text: str, source: str = "<string>") -> GraphConfig:
    """Parse graph text; raises `GraphConfigError` listing every problem (with line:col when known)."""
    proto = pb.CalculatorGraphConfig()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as exc:
        raise GraphConfigError(source, [_describe_parse_error(exc, text)]) from None

    problems: list[str] = []
    graph_handler = _handler_name(proto.input_stream_handler) if proto.HasField("input_stream_handler") else None
    nodes = tuple(
        node for index, node_proto in enumerate(proto.node) if (node := _node(node_proto, index, graph_handler, text, problems)) is not None
    )
    config = GraphConfig(
        nodes=nodes,
        input_streams=_refs(proto.input_stream, "graph input_stream", text, problems),
        output_streams=_refs(proto.output_stream, "graph output_stream", text, problems),
        input_side_packets=_refs(proto.input_side_packet, "graph input_side_packet", text, problems),
        output_side_packets=_refs(proto.output_side_packet, "graph output_side_packet", text, problems),
        queue_max_size=_queue_max_size(text, problems),
        source=source,
    )
    if problems:
        raise GraphConfigError(source, problems)
    return config


def _describe_parse_error(exc: text_format.ParseError, text: str) -> str:
    message = str(exc)
    line, column = exc.GetLine(), exc.GetColumn()
    if match := _POSITION.match(message):
        message = message[match.end() :]
    if match := _UNKNOWN_ANY.match(message):
        type_name = match.group(1)
        found = re.search(r"\[\s*[\w.\-]+\s*/\s*" + re.escape(type_name) + r"\s*\]", text)
        if found:
            line, column = _position(text, found.start())
        message = f"unknown options type {type_name!r}; known types: {_known_types()}"
    elif match := _UNKNOWN_EXT.search(message):
        message = f"unknown options extension {match.group(1)!r}; known types: {_known_types()}"
    if line is None:
        return message
    return f"{line}:{column}: {message}"


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _at(text: str, literal: str) -> str:
    """`line:col: ` of the first quoted occurrence of `literal`: stream specs carry no position after parsing."""
    for quote in ('"', "'"):
        offset = text.find(f"{quote}{literal}{quote}")
        if offset >= 0:
            line, column = _position(text, offset)
            return f"{line}:{column}: "
    return ""


def _refs(specs: Any, what: str, text: str, problems: list[str]) -> tuple[StreamRef, ...]:
    refs = []
    for spec in specs:
        try:
            refs.append(StreamRef.parse(spec))
        except ValueError as exc:
            problems.append(f"{_at(text, spec)}{what}: {exc}")
    return tuple(refs)


def _handler_name(config: pb.InputStreamHandlerConfig) -> str | None:
    return config.input_stream_handler if config.HasField("input_stream_handler") else None


def _node(proto: pb.CalculatorGraphConfig.Node, index: int, graph_handler: str | None, text: str, problems: list[str]) -> NodeConfig | None:
    label = f'node "{proto.name}"' if proto.name else f"node #{index + 1}"
    label += f" ({proto.calculator})" if proto.calculator else ""
    if not proto.calculator:
        problems.append(f"{label}: no calculator")

    def refs(specs: Any, field: str) -> tuple[StreamRef, ...]:
        return _refs(specs, f"{label}: {field}", text, problems)

    back_edges = set()
    for info in proto.input_stream_info:
        if not info.back_edge:
            continue
        match = _TAG_INDEX.match(info.tag_index)
        if match is None:
            problems.append(f"{_at(text, info.tag_index)}{label}: malformed input_stream_info tag_index {info.tag_index!r}")
            continue
        back_edges.add(f"{match.group(1) or ''}:{int(match.group(2) or 0)}")

    options_type, options = _options(proto, label, problems)
    node = NodeConfig(
        calculator=proto.calculator,
        name=proto.name,
        input_streams=refs(proto.input_stream, "input_stream"),
        output_streams=refs(proto.output_stream, "output_stream"),
        # external_input is MediaPipe's old spelling of input_side_packet.
        input_side_packets=refs([*proto.input_side_packet, *proto.external_input], "input_side_packet"),
        output_side_packets=refs(proto.output_side_packet, "output_side_packet"),
        options=options,
        options_type=options_type,
        back_edges=frozenset(back_edges),
        input_stream_handler=(_handler_name(proto.input_stream_handler) if proto.HasField("input_stream_handler") else graph_handler),
    )
    return node if proto.calculator else None


def _options(proto: pb.CalculatorGraphConfig.Node, label: str, problems: list[str]) -> tuple[str | None, dict[str, Any]]:
    """The node's one options message, from `options { [X.ext] {…} }` or `node_options { [type/X] {…} }`."""
    messages: dict[str, Message] = {}
    for any_options in proto.node_options:
        # Written as `[type/X] { … }` the type was checked by text_format; the raw
        # `type_url: … value: …` form was not.
        type_name = any_options.TypeName()
        try:
            message = _message_class(type_name)()
        except KeyError:
            known = _known_types()
            problems.append(f"{label}: unknown options type {type_name!r}; known types: {known}")
            continue
        try:
            unpacked = any_options.Unpack(message)
        except DecodeError:
            unpacked = False
        if not unpacked:
            problems.append(f"{label}: cannot decode node_options of type {type_name!r}")
            continue
        messages[type_name] = message
    # As in MediaPipe, `options` wins over `node_options` for the same type.
    for field, value in proto.options.ListFields():
        if field.is_extension and field.message_type is not None:
            messages[field.message_type.full_name] = value
    if len(messages) > 1:
        problems.append(f"{label}: a node takes one options message, got {', '.join(sorted(messages))}")
        return None, {}
    if not messages:
        return None, {}
    ((type_name, message),) = messages.items()
    return type_name, _to_dict(message)


def _message_class(type_name: str) -> type[Message]:
    descriptor: Descriptor = descriptor_pool.Default().FindMessageTypeByName(type_name)
    return message_factory.GetMessageClass(descriptor)


def _to_dict(message: Message) -> dict[str, Any]:
    """Only the fields the text sets, with plain Python values (int64 stays int, enums become names)."""
    result: dict[str, Any] = {}
    for field, value in message.ListFields():
        key = f"[{field.full_name}]" if field.is_extension else field.name
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            result[key] = {k: _scalar(value_field, v) for k, v in value.items()}
        elif field.is_repeated:
            result[key] = [_scalar(field, v) for v in value]
        else:
            result[key] = _scalar(field, value)
    return result


def _scalar(field: FieldDescriptor, value: Any) -> Any:
    if field.message_type is not None:
        return _to_dict(value)
    if field.enum_type is not None:
        enum_value = field.enum_type.values_by_number.get(value)
        return enum_value.name if enum_value is not None else value
    if field.type == FieldDescriptor.TYPE_FLOAT:
        return _shortest_float32(value)
    return value


def _shortest_float32(value: float) -> float:
    # A proto `float` comes back widened (0.1 -> 0.10000000149011612); give the value as written.
    packed = struct.pack("<f", value)
    for digits in range(6, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.pack("<f", candidate) == packed:
            return candidate
    return value


def _queue_max_size(text: str, problems: list[str]) -> int | None:
    match = _QUEUE_DIRECTIVE.search(text)
    if match is None:
        return None
    value = match.group(1)
    if value == "AUTO":
        return os.cpu_count() or _AUTO_QUEUE_FALLBACK
    if re.fullmatch(r"\d+", value):
        return int(value)
    line, column = _position(text, match.start(1))
    problems.append(f"{line}:{column}: OVMS_GRAPH_QUEUE_MAX_SIZE must be 0, a positive integer or AUTO, got {value!r}")
    return None

"""KServe v2 tensors as data, and their wire forms: raw little-endian bytes (gRPC
`raw_input_contents`, REST binary extension), JSON `data`, and the REST binary tensor extension
(a JSON header of `Inference-Header-Content-Length` bytes followed by the binary tensors).

Pure functions over bytes and numpy: no protobuf here (the generated stubs share their message
names with tritonclient's, so the two cannot live in one process; see proto/README.md).
Malformed input raises InvalidRequestError. Shapes are bounded before any arithmetic: at most
MAX_DIMS dimensions, each a non-negative int64, and the element count is multiplied out only as
far as the elements actually sent (a shape of thousands of huge dimensions once made a big-integer
product that stalled the event loop for seconds). Messages never spell out a huge value.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

from graphs.errors import InvalidRequestError
from serving.errors import json_object

# KServe datatype -> numpy dtype (little-endian); BYTES is an object array of `bytes`.
NUMPY_DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
DATATYPES = (*NUMPY_DTYPES, "BYTES")
HEADER_LENGTH = "Inference-Header-Content-Length"
# Requests at least this large are decoded in a thread by the front ends: decoding is linear in
# the size, but at the body limit it takes seconds of Python, which in a thread gives the event
# loop the GIL back every switch interval instead of stalling it.
DECODE_IN_THREAD_BYTES = 1 << 20

# Tensor ranks in practice stay far below this (numpy's own limit is 64): it bounds the work a
# shape can ask for and the size of the messages that show it.
MAX_DIMS = 64
INT64_MAX = 2**63 - 1
SHOWN_DIMS = 8  # dimensions a message shows before it elides the rest
SHOWN_CHARS = 40  # characters of a client's value a message shows

_LENGTH = struct.Struct("<I")
_json_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Tensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray[Any, Any]  # flat, row-major; dtype object (bytes items) for BYTES

    def items(self) -> list[bytes]:
        """The elements of a BYTES tensor."""
        return list(self.data)


def shown(value: object) -> str:
    """A client's value for a message, cut to SHOWN_CHARS (an int beyond int64 is not spelt out:
    formatting a huge one is itself slow, and Python refuses past 4300 digits)."""
    if isinstance(value, int) and not -INT64_MAX - 1 <= value <= INT64_MAX:
        return "<an integer beyond int64>"
    if isinstance(value, str):
        value = value[: SHOWN_CHARS + 1]  # repr of the head only: the rest would be cut anyway
    elif not isinstance(value, int | float | None):
        return f"<a JSON {'list' if isinstance(value, list) else 'object' if isinstance(value, dict) else type(value).__name__}>"
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


def shape_text(shape: Sequence[object]) -> str:
    """A shape for a message: its first SHOWN_DIMS dimensions, then how many there are."""
    dims = ", ".join(shown(dim) for dim in shape[:SHOWN_DIMS])
    return f"[{dims}, … ({len(shape)} dims)]" if len(shape) > SHOWN_DIMS else f"[{dims}]"


def check_shape(name: str, shape: Sequence[object]) -> tuple[int, ...]:
    """The shape, once it has at most MAX_DIMS dimensions, each an int in 0..INT64_MAX."""
    if len(shape) > MAX_DIMS:
        raise InvalidRequestError(f"tensor {shown(name)}: shape {shape_text(shape)} has more than the limit of {MAX_DIMS} dimensions")
    for dim in shape:
        if not isinstance(dim, int) or isinstance(dim, bool):
            raise InvalidRequestError(f"tensor {shown(name)}: 'shape' must be a list of integers")
        if dim < 0:
            raise InvalidRequestError(f"tensor {shown(name)}: shape {shape_text(shape)} has a negative dimension")
        if dim > INT64_MAX:
            raise InvalidRequestError(
                f"tensor {shown(name)}: shape {shape_text(shape)} has a dimension beyond the int64 limit of {INT64_MAX}"
            )
    return tuple(shape)  # type: ignore[arg-type]  # every item checked to be an int above


def element_count(shape: Sequence[int], sent: int) -> int | None:
    """The element count of a checked shape, or None as soon as the running product passes
    `sent` (the elements actually sent): the product never grows past sent * INT64_MAX."""
    if 0 in shape:
        return 0
    count = 1
    for dim in shape:
        count *= dim
        if count > sent:
            return None
    return count


def _count_text(count: int | None, sent: int) -> str:
    return str(count) if count is not None else f"more than {sent}"


def check_count(name: str, dims: Sequence[int], sent: int, holds: str) -> None:
    """Refuse a checked shape whose element count is not the `sent` elements (`holds` says where
    they are, e.g. "data holds")."""
    count = element_count(dims, sent)
    if count != sent:
        raise InvalidRequestError(
            f"tensor {shown(name)}: shape {shape_text(dims)} has {_count_text(count, sent)} elements but {holds} {sent}"
        )


def _check_datatype(name: str, datatype: str) -> None:
    if datatype not in DATATYPES:
        raise InvalidRequestError(f"tensor {shown(name)}: unknown datatype {shown(datatype)}; expected one of {', '.join(DATATYPES)}")


def bytes_tensor(name: str, items: Sequence[bytes], shape: Sequence[int] | None = None) -> Tensor:
    data = np.empty(len(items), dtype=object)
    data[:] = list(items)
    return Tensor(name, "BYTES", tuple(shape) if shape is not None else (len(items),), data)


def array_tensor(name: str, datatype: str, array: np.ndarray[Any, Any]) -> Tensor:
    return Tensor(name, datatype, tuple(array.shape), np.ascontiguousarray(array, dtype=NUMPY_DTYPES[datatype]).reshape(-1))


# -- raw bytes ------------------------------------------------------------------------------


def serialize_bytes(items: Iterable[bytes]) -> bytes:
    """BYTES elements as raw contents: each a 4-byte little-endian length, then its bytes."""
    return b"".join(_LENGTH.pack(len(item)) + item for item in items)


def deserialize_bytes(name: str, raw: bytes | memoryview) -> list[bytes]:
    items: list[bytes] = []
    view, offset = memoryview(raw), 0
    while offset < len(view):
        if offset + 4 > len(view):
            raise InvalidRequestError(f"tensor {shown(name)}: raw BYTES contents end inside an element's 4-byte length")
        (length,) = _LENGTH.unpack_from(view, offset)
        offset += 4
        if offset + length > len(view):
            raise InvalidRequestError(f"tensor {shown(name)}: raw BYTES element of {length} bytes runs past the end of the contents")
        items.append(bytes(view[offset : offset + length]))
        offset += length
    return items


def from_raw(name: str, datatype: str, shape: Sequence[object], raw: bytes | memoryview) -> Tensor:
    _check_datatype(name, datatype)
    dims = check_shape(name, shape)
    if datatype == "BYTES":
        items = deserialize_bytes(name, raw)
        check_count(name, dims, len(items), "the contents hold")
        return bytes_tensor(name, items, dims)
    dtype = NUMPY_DTYPES[datatype]
    count = element_count(dims, len(raw) // dtype.itemsize)
    if count is None or count * dtype.itemsize != len(raw):
        needs = _count_text(None if count is None else count * dtype.itemsize, len(raw))
        raise InvalidRequestError(f"tensor {shown(name)}: shape {shape_text(dims)} of {datatype} needs {needs} bytes, got {len(raw)}")
    return Tensor(name, datatype, dims, np.frombuffer(raw, dtype=dtype).copy())


def to_raw(tensor: Tensor) -> bytes:
    if tensor.datatype == "BYTES":
        return serialize_bytes(tensor.items())
    return np.ascontiguousarray(tensor.data, dtype=NUMPY_DTYPES[tensor.datatype]).tobytes()


# -- JSON data ------------------------------------------------------------------------------


def _flatten(value: Any) -> list[Any]:
    """Nested lists in row-major order, flat (iterative: no recursion limit to reach)."""
    if isinstance(value, list) and not any(type(item) is list for item in value):
        return value  # already flat, as tritonclient sends it: a scan in C, not a loop in Python
    flat: list[Any] = []
    stack = [iter([value])]
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
        elif isinstance(item, list):
            stack.append(iter(item))
        else:
            flat.append(item)
    return flat


_END = object()


def from_json(name: str, datatype: str, shape: Sequence[object], data: Any) -> Tensor:
    """A tensor from REST `data` (flat or nested, row-major); BYTES elements are strings."""
    _check_datatype(name, datatype)
    dims = check_shape(name, shape)
    flat = _flatten(data)
    check_count(name, dims, len(flat), "data holds")
    if datatype == "BYTES":
        if not all(isinstance(item, str) for item in flat):
            raise InvalidRequestError(f"tensor {shown(name)}: BYTES data must be strings")
        return bytes_tensor(name, [item.encode() for item in flat], dims)
    kind = NUMPY_DTYPES[datatype].kind
    wanted: tuple[type, ...] = (bool,) if kind == "b" else (int, float) if kind == "f" else (int,)
    if not all(isinstance(item, wanted) and (kind == "b" or not isinstance(item, bool)) for item in flat):
        raise InvalidRequestError(f"tensor {shown(name)}: data does not fit datatype {datatype}")
    try:
        return Tensor(name, datatype, dims, np.array(flat, dtype=NUMPY_DTYPES[datatype]))
    except OverflowError:
        raise InvalidRequestError(f"tensor {shown(name)}: a value is out of range for {datatype}") from None


def to_json(tensor: Tensor) -> list[Any]:
    """Flat `data` for a REST response; BYTES elements as text (invalid UTF-8 replaced)."""
    if tensor.datatype == "BYTES":
        return [item.decode("utf-8", errors="replace") for item in tensor.items()]
    return tensor.data.tolist()  # type: ignore[no-any-return]


# -- REST bodies (JSON, or the binary tensor extension) --------------------------------------


def parse_rest_request(body: bytes, header_length: str | None) -> tuple[dict[str, Any], list[Tensor]]:
    """The request's JSON object (inputs included) and its input tensors."""
    if header_length is None:
        header_raw, tail = body, b""
    else:
        try:
            length = int(header_length)  # aiohttp caps a header at 8190 bytes: a bounded parse
        except ValueError:
            raise InvalidRequestError(f"{HEADER_LENGTH} must be an integer, got {shown(header_length)}") from None
        if not 0 < length <= len(body):
            raise InvalidRequestError(f"{HEADER_LENGTH} is {shown(length)} but the body has {len(body)} bytes")
        header_raw, tail = body[:length], body[length:]
    header = json_object(header_raw, "inference request")
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidRequestError("inference request needs a non-empty 'inputs' list")
    view, offset, tensors = memoryview(tail), 0, []
    for spec in inputs:
        if not isinstance(spec, dict):
            raise InvalidRequestError("each input must be a JSON object with name, shape, datatype and data")
        name, datatype, shape = spec.get("name"), spec.get("datatype"), spec.get("shape")
        if not isinstance(name, str) or not isinstance(datatype, str):
            raise InvalidRequestError("each input needs a string 'name' and 'datatype'")
        if not isinstance(shape, list):
            raise InvalidRequestError(f"input {shown(name)}: 'shape' must be a list of integers")
        check_shape(name, shape)  # before the data is looked at
        parameters = spec.get("parameters") or {}
        size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0 or offset + size > len(view):
                raise InvalidRequestError(
                    f"input {shown(name)}: binary_data_size {shown(size)} does not fit the {len(view) - offset} binary bytes left"
                )
            tensors.append(from_raw(name, datatype, shape, view[offset : offset + size]))
            offset += size
        elif "data" in spec:
            tensors.append(from_json(name, datatype, shape, spec["data"]))
        else:
            raise InvalidRequestError(f"input {shown(name)} has neither 'data' nor parameters.binary_data_size")
    if offset != len(view):
        raise InvalidRequestError(f"{len(view) - offset} bytes of binary data after the last binary input")
    return header, tensors


def wants_binary(header: dict[str, Any], output: str) -> bool:
    """Does the REST request ask for this output as binary (`binary_data`, else the request's
    `binary_data_output`)?"""
    for spec in header.get("outputs") or []:
        if isinstance(spec, dict) and spec.get("name") == output:
            value = (spec.get("parameters") or {}).get("binary_data")
            if value is not None:
                return bool(value)
    return bool((header.get("parameters") or {}).get("binary_data_output", False))


def rest_response(response: dict[str, Any], outputs: Sequence[Tensor], binary: Sequence[bool]) -> tuple[bytes, int | None]:
    """The body (JSON, then the binary outputs in order) and the JSON part's length, or None
    when nothing went binary (a plain JSON body)."""
    specs, tails = [], []
    for tensor, as_binary in zip(outputs, binary, strict=True):
        spec: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": list(tensor.shape)}
        if as_binary:
            raw = to_raw(tensor)
            spec["parameters"] = {"binary_data_size": len(raw)}
            tails.append(raw)
        else:
            spec["data"] = to_json(tensor)
        specs.append(spec)
    head = _json_encode({**response, "outputs": specs})
    if not tails:
        return head, None
    return head + b"".join(tails), len(head)

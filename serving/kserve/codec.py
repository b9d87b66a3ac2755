"""KServe v2 tensors as data, and their wire forms: raw little-endian bytes (gRPC
`raw_input_contents`, REST binary extension), JSON `data`, and the REST binary tensor extension
(a JSON header of `Inference-Header-Content-Length` bytes followed by the binary tensors).

Pure functions over bytes and numpy: no protobuf here (the generated stubs share their message
names with tritonclient's, so the two cannot live in one process; see proto/README.md).
Malformed input raises InvalidRequestError.
"""

from __future__ import annotations

import math
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


def element_count(name: str, shape: Sequence[int]) -> int:
    if any(dim < 0 for dim in shape):
        raise InvalidRequestError(f"tensor {name!r}: shape {list(shape)} has a negative dimension")
    return math.prod(shape)


def _check_datatype(name: str, datatype: str) -> None:
    if datatype not in DATATYPES:
        raise InvalidRequestError(f"tensor {name!r}: unknown datatype {datatype!r}; expected one of {', '.join(DATATYPES)}")


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
            raise InvalidRequestError(f"tensor {name!r}: raw BYTES contents end inside an element's 4-byte length")
        (length,) = _LENGTH.unpack_from(view, offset)
        offset += 4
        if offset + length > len(view):
            raise InvalidRequestError(f"tensor {name!r}: raw BYTES element of {length} bytes runs past the end of the contents")
        items.append(bytes(view[offset : offset + length]))
        offset += length
    return items


def from_raw(name: str, datatype: str, shape: Sequence[int], raw: bytes | memoryview) -> Tensor:
    _check_datatype(name, datatype)
    count = element_count(name, shape)
    if datatype == "BYTES":
        items = deserialize_bytes(name, raw)
        if len(items) != count:
            raise InvalidRequestError(f"tensor {name!r}: shape {list(shape)} has {count} elements but the contents hold {len(items)}")
        return bytes_tensor(name, items, shape)
    dtype = NUMPY_DTYPES[datatype]
    if len(raw) != count * dtype.itemsize:
        raise InvalidRequestError(
            f"tensor {name!r}: shape {list(shape)} of {datatype} needs {count * dtype.itemsize} bytes, got {len(raw)}"
        )
    return Tensor(name, datatype, tuple(shape), np.frombuffer(raw, dtype=dtype).copy())


def to_raw(tensor: Tensor) -> bytes:
    if tensor.datatype == "BYTES":
        return serialize_bytes(tensor.items())
    return np.ascontiguousarray(tensor.data, dtype=NUMPY_DTYPES[tensor.datatype]).tobytes()


# -- JSON data ------------------------------------------------------------------------------


def _flatten(value: Any) -> list[Any]:
    """Nested lists in row-major order, flat (iterative: no recursion limit to reach)."""
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


def from_json(name: str, datatype: str, shape: Sequence[int], data: Any) -> Tensor:
    """A tensor from REST `data` (flat or nested, row-major); BYTES elements are strings."""
    _check_datatype(name, datatype)
    count = element_count(name, shape)
    flat = _flatten(data)
    if len(flat) != count:
        raise InvalidRequestError(f"tensor {name!r}: shape {list(shape)} has {count} elements but data holds {len(flat)}")
    if datatype == "BYTES":
        if not all(isinstance(item, str) for item in flat):
            raise InvalidRequestError(f"tensor {name!r}: BYTES data must be strings")
        return bytes_tensor(name, [item.encode() for item in flat], shape)
    kind = NUMPY_DTYPES[datatype].kind
    wanted: tuple[type, ...] = (bool,) if kind == "b" else (int, float) if kind == "f" else (int,)
    if not all(isinstance(item, wanted) and (kind == "b" or not isinstance(item, bool)) for item in flat):
        raise InvalidRequestError(f"tensor {name!r}: data does not fit datatype {datatype}")
    try:
        return Tensor(name, datatype, tuple(shape), np.array(flat, dtype=NUMPY_DTYPES[datatype]))
    except OverflowError:
        raise InvalidRequestError(f"tensor {name!r}: a value is out of range for {datatype}") from None


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
            length = int(header_length)
        except ValueError:
            raise InvalidRequestError(f"{HEADER_LENGTH} must be an integer, got {header_length!r}") from None
        if not 0 < length <= len(body):
            raise InvalidRequestError(f"{HEADER_LENGTH} is {length} but the body has {len(body)} bytes")
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
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
            raise InvalidRequestError(f"input {name!r}: 'shape' must be a list of integers")
        parameters = spec.get("parameters") or {}
        size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0 or offset + size > len(view):
                raise InvalidRequestError(
                    f"input {name!r}: binary_data_size {size!r} does not fit the {len(view) - offset} binary bytes left"
                )
            tensors.append(from_raw(name, datatype, shape, view[offset : offset + size]))
            offset += size
        elif "data" in spec:
            tensors.append(from_json(name, datatype, shape, spec["data"]))
        else:
            raise InvalidRequestError(f"input {name!r} has neither 'data' nor parameters.binary_data_size")
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

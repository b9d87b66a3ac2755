"""KServe v2 gRPC messages to and from our tensors and requests, and errors to gRPC status
codes. It imports our generated stubs, so like grpc_server.py it cannot be imported beside
tritonclient's (see proto/README.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from graphs.errors import InvalidRequestError, OvserveError
from serving.errors import status_of
from serving.kserve import codec
from serving.kserve.inference import InferRequest, InferResult, Parameter
from serving.kserve.proto import inference_service_pb2 as pb

# gRPC's status for each HTTP status that serving.errors.status_of gives an error (one mapping
# of errors to statuses, in serving.errors; gRPC only translates it).
_CODES: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    405: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,  # admission queue full
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def status_code(error: OvserveError) -> grpc.StatusCode:
    return _CODES.get(status_of(error), grpc.StatusCode.INTERNAL)


# -- messages <-> protocol-neutral data ------------------------------------------------------


def _parameter(value: Any) -> Parameter:
    kind = value.WhichOneof("parameter_choice")
    return getattr(value, kind) if kind is not None else ""  # type: ignore[no-any-return]


def _set_parameter(target: Any, value: Parameter) -> None:
    if isinstance(value, bool):
        target.bool_param = value
    elif isinstance(value, int):
        target.int64_param = value
    elif isinstance(value, float):
        target.double_param = value
    else:
        target.string_param = value


_CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
}


def _input_tensor(spec: Any, raw: bytes | None) -> codec.Tensor:
    # protobuf gives int64 dims; the codec still bounds their count and sign before any product
    shape = codec.check_shape(spec.name, list(spec.shape))
    if raw is not None:
        return codec.from_raw(spec.name, spec.datatype, shape, raw)
    if spec.datatype == "BYTES":
        items = list(spec.contents.bytes_contents)
        codec.check_count(spec.name, shape, len(items), "bytes_contents holds")
        return codec.bytes_tensor(spec.name, items, shape)
    field = _CONTENTS_FIELD.get(spec.datatype)
    if field is None:
        raise InvalidRequestError(f"tensor {codec.shown(spec.name)}: {codec.shown(spec.datatype)} needs raw_input_contents")
    return codec.from_json(spec.name, spec.datatype, shape, list(getattr(spec.contents, field)))


def request_from_proto(message: Any) -> InferRequest:
    raw = list(message.raw_input_contents)
    if raw and len(raw) != len(message.inputs):
        raise InvalidRequestError(f"raw_input_contents has {len(raw)} entries for {len(message.inputs)} inputs; give one per input or none")
    inputs = tuple(_input_tensor(spec, raw[i] if raw else None) for i, spec in enumerate(message.inputs))
    outputs = tuple(o.name for o in message.outputs) or None
    parameters = {key: _parameter(value) for key, value in message.parameters.items()}
    return InferRequest(message.model_name, message.model_version, message.id, inputs, outputs, parameters)


async def decoded(message: Any) -> InferRequest:
    """request_from_proto, in a thread for a large message (see codec.DECODE_IN_THREAD_BYTES)."""
    if message.ByteSize() < codec.DECODE_IN_THREAD_BYTES:
        return request_from_proto(message)
    return await asyncio.to_thread(request_from_proto, message)


def response_to_proto(result: InferResult) -> Any:
    response = pb.ModelInferResponse(model_name=result.model_name, model_version=result.model_version, id=result.id)
    for key, value in result.parameters.items():
        _set_parameter(response.parameters[key], value)
    for tensor in result.outputs:
        response.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=list(tensor.shape))
        response.raw_output_contents.append(codec.to_raw(tensor))
    return response

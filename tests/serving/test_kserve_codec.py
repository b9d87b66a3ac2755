"""KServe v2 tensor encodings: raw bytes (BYTES length prefixes, little-endian numbers), JSON
data, and the REST binary tensor extension, checked against tritonclient's own encoders."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pytest
import tritonclient.http as thttp
from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor

from graphs.errors import InvalidRequestError
from serving.kserve import codec
from serving.kserve.inference import generation_body, sse_events


def test_bytes_round_trip_and_tritonclient_agree() -> None:
    items = [b"", b"hello", "café 🥐".encode(), bytes(range(256))]
    raw = codec.serialize_bytes(items)
    assert raw[:4] == b"\x00\x00\x00\x00" and raw[4:13] == struct.pack("<I", 5) + b"hello"
    assert raw == serialize_byte_tensor(np.array(items, dtype=object)).item()
    assert codec.deserialize_bytes("t", raw) == items
    assert list(deserialize_bytes_tensor(raw)) == items
    tensor = codec.from_raw("t", "BYTES", [2, 2], raw)
    assert tensor.shape == (2, 2) and tensor.items() == items and codec.to_raw(tensor) == raw


@pytest.mark.parametrize("raw", [b"\x05\x00\x00\x00abc", b"\x01\x00"])
def test_truncated_bytes_are_refused(raw: bytes) -> None:
    with pytest.raises(InvalidRequestError, match="tensor 't'"):
        codec.deserialize_bytes("t", raw)


@pytest.mark.parametrize(
    ("datatype", "values"), [("FP32", [1.5, -2.0]), ("INT64", [1, -(2**40)]), ("BOOL", [True, False]), ("UINT8", [0, 255])]
)
def test_numbers_raw_and_json(datatype: str, values: list[Any]) -> None:
    array = np.array(values, dtype=codec.NUMPY_DTYPES[datatype])
    tensor = codec.from_raw("x", datatype, [len(values)], array.tobytes())
    assert tensor.data.tolist() == values and codec.to_raw(tensor) == array.tobytes()
    assert codec.to_json(codec.from_json("x", datatype, [1, len(values)], [values])) == values


def test_element_counts_and_datatypes_are_checked() -> None:
    with pytest.raises(InvalidRequestError, match="needs 8 bytes, got 4"):
        codec.from_raw("x", "FP32", [2], b"\x00" * 4)
    with pytest.raises(InvalidRequestError, match="has 3 elements but the contents hold 1"):
        codec.from_raw("x", "BYTES", [3], codec.serialize_bytes([b"a"]))
    with pytest.raises(InvalidRequestError, match="unknown datatype 'FP8'"):
        codec.from_raw("x", "FP8", [1], b"\x00")
    with pytest.raises(InvalidRequestError, match="negative dimension"):
        codec.from_json("x", "BYTES", [-1], ["a"])
    with pytest.raises(InvalidRequestError, match="BYTES data must be strings"):
        codec.from_json("x", "BYTES", [1], [3])
    with pytest.raises(InvalidRequestError, match="does not fit datatype INT32"):
        codec.from_json("x", "INT32", [1], [1.5])
    with pytest.raises(InvalidRequestError, match="out of range"):
        codec.from_json("x", "UINT8", [1], [300])


def tritonclient_body(binary: bool) -> tuple[bytes, int | None]:
    """What tritonclient.http sends for two inputs (BYTES and FP32)."""
    text = thttp.InferInput("text_input", [2], "BYTES")
    text.set_data_from_numpy(np.array([b"one", "twö".encode()], dtype=object), binary_data=binary)
    numbers = thttp.InferInput("scale", [1, 2], "FP32")
    numbers.set_data_from_numpy(np.array([[0.5, 2.0]], dtype=np.float32), binary_data=binary)
    outputs = [thttp.InferRequestedOutput("text_output", binary_data=binary)]
    body, length = thttp.InferenceServerClient.generate_request_body(
        [text, numbers], outputs=outputs, request_id="7", parameters={"max_tokens": 4}
    )
    return body, length


@pytest.mark.parametrize("binary", [True, False])
def test_rest_request_from_tritonclient(binary: bool) -> None:
    body, length = tritonclient_body(binary)
    assert (length is not None) == binary
    header, tensors = codec.parse_rest_request(body, None if length is None else str(length))
    assert header["id"] == "7" and header["parameters"] == {"max_tokens": 4}
    text, numbers = tensors
    assert (text.name, text.datatype, text.shape, text.items()) == ("text_input", "BYTES", (2,), [b"one", "twö".encode()])
    assert (numbers.shape, numbers.data.tolist()) == ((1, 2), [0.5, 2.0])
    assert codec.wants_binary(header, "text_output") is binary


def test_rest_request_errors() -> None:
    body, length = tritonclient_body(True)
    with pytest.raises(InvalidRequestError, match="binary data after the last binary input"):
        codec.parse_rest_request(body + b"!", str(length))
    with pytest.raises(InvalidRequestError, match="does not fit"):
        codec.parse_rest_request(body[:-1], str(length))
    with pytest.raises(InvalidRequestError, match="must be an integer"):
        codec.parse_rest_request(body, "ten")
    with pytest.raises(InvalidRequestError, match="neither 'data' nor"):
        codec.parse_rest_request(b'{"inputs": [{"name": "a", "datatype": "BYTES", "shape": [1]}]}', None)
    with pytest.raises(InvalidRequestError, match="'shape' must be a list of integers"):
        codec.parse_rest_request(b'{"inputs": [{"name": "a", "datatype": "BYTES", "shape": "1", "data": ["x"]}]}', None)


def test_binary_output_choice() -> None:
    assert codec.wants_binary({"parameters": {"binary_data_output": True}}, "y")
    assert not codec.wants_binary(
        {"parameters": {"binary_data_output": True}, "outputs": [{"name": "y", "parameters": {"binary_data": False}}]}, "y"
    )
    assert not codec.wants_binary({}, "y")


def test_rest_response_read_by_tritonclient() -> None:
    text = codec.bytes_tensor("text_output", ["Bonjour 🥐".encode()])
    vectors = codec.array_tensor("embeddings", "FP32", np.arange(6, dtype=np.float32).reshape(2, 3))
    head = {"model_name": "m", "model_version": "1", "parameters": {"finish_reason": "stop"}}
    body, length = codec.rest_response(head, [text, vectors], [True, False])
    assert length is not None and json.loads(body[:length])["outputs"][1]["data"] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    result = thttp.InferResult.from_response_body(body, header_length=length)
    assert result.as_numpy("text_output").tolist() == ["Bonjour 🥐".encode()]
    assert result.as_numpy("embeddings").shape == (2, 3)
    assert result.get_response()["parameters"] == {"finish_reason": "stop"}
    plain, none = codec.rest_response(head, [text], [False])
    assert none is None and json.loads(plain)["outputs"][0]["data"] == ["Bonjour 🥐"]


def test_generation_body_shapes() -> None:
    endpoint, body = generation_body("Say this is a test", {"max_tokens": 5, "priority": 1, "triton_x": True}, "tiny", stream=False)
    assert endpoint == "chat/completions"
    assert body == {"messages": [{"role": "user", "content": "Say this is a test"}], "max_tokens": 5, "model": "tiny", "stream": False}
    endpoint, body = generation_body(json.dumps({"prompt": "The quick", "model": "other", "stream": True}), {}, "tiny", stream=False)
    assert endpoint == "completions" and body == {"prompt": "The quick", "model": "tiny", "stream": False}
    assert generation_body("{not json", {}, "tiny", stream=True)[1]["messages"][0]["content"] == "{not json"
    with pytest.raises(InvalidRequestError, match="needs 'messages'"):
        generation_body('{"input": "x"}', {}, "tiny", stream=False)
    with pytest.raises(InvalidRequestError, match="n must be 1"):
        generation_body("hi", {"n": 2}, "tiny", stream=True)


def test_sse_events() -> None:
    body = b'data: {"choices": [{"delta": {"content": "a"}}]}\n\ndata: {"choices": []}\n\n: comment\n\ndata: [DONE]\n\n'
    assert sse_events(body) == [{"choices": [{"delta": {"content": "a"}}]}, {"choices": []}, None]

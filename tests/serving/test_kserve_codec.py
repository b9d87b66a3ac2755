"""KServe v2 tensor encodings: raw bytes (BYTES length prefixes, little-endian numbers), JSON
data, and the REST binary tensor extension, checked against tritonclient's own encoders."""

from __future__ import annotations

import json
import struct
import time
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
    with pytest.raises(InvalidRequestError, match="needs more than 4 bytes, got 4"):
        codec.from_raw("x", "FP32", [2], b"\x00" * 4)
    with pytest.raises(InvalidRequestError, match="needs 4 bytes, got 8"):
        codec.from_raw("x", "FP32", [1], b"\x00" * 8)
    with pytest.raises(InvalidRequestError, match="has more than 1 elements but the contents hold 1"):
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


# -- bounded shapes (issue 23: a shape of thousands of huge dimensions was a big-integer product
# on the event loop, seconds long, then a 500 while formatting it) -----------------------------

HOSTILE = [2**62] * 20_000


def test_shape_rank_is_limited_and_not_echoed() -> None:
    assert codec.check_shape("x", [1] * codec.MAX_DIMS) == (1,) * codec.MAX_DIMS
    for decode in (
        lambda: codec.from_json("x", "BYTES", HOSTILE, ["a"]),
        lambda: codec.from_raw("x", "FP32", HOSTILE, b"\x00" * 4),
        lambda: codec.from_raw("x", "BYTES", [*HOSTILE, 10**5000], codec.serialize_bytes([b"a"])),
    ):
        with pytest.raises(InvalidRequestError) as caught:
            decode()
        message = caught.value.message
        shown = ", ".join(["4611686018427387904"] * codec.SHOWN_DIMS)
        assert message.startswith(f"tensor 'x': shape [{shown}, … (2000"), message  # 20000 or 20001 dims
        assert message.endswith(f"dims)] has more than the limit of {codec.MAX_DIMS} dimensions") and len(message) < 300


@pytest.mark.parametrize(
    ("shape", "says"),
    [
        ([1, -1], "negative dimension"),
        ([2**63], "beyond the int64 limit of 9223372036854775807"),
        ([1, 10**4000], "beyond the int64 limit"),  # 4000 digits: str() would still take it, slowly
        ([1, "2"], "'shape' must be a list of integers"),
        ([True], "'shape' must be a list of integers"),
    ],
)
def test_each_dimension_is_a_non_negative_int64(shape: list[Any], says: str) -> None:
    with pytest.raises(InvalidRequestError, match=says) as caught:
        codec.from_json("x", "BYTES", shape, ["a"])
    assert len(caught.value.message) < 200 and "0000000000000000000000" not in caught.value.message


def test_element_count_stops_past_what_was_sent() -> None:
    assert codec.element_count((2, 3, 4), 24) == 24
    assert codec.element_count((2, 3, 4), 23) is None
    assert codec.element_count((2**63 - 1,) * 64, 10) is None  # stops at the first factor
    assert codec.element_count((2**63 - 1,) * 63 + (0,), 0) == 0  # a zero anywhere: no elements
    assert codec.element_count((), 1) == 1  # a scalar
    tensor = codec.from_json("x", "BYTES", [2**40, 0], [])
    assert tensor.shape == (2**40, 0) and tensor.data.size == 0
    with pytest.raises(InvalidRequestError, match=r"shape \[4611686018427387904, 4611686018427387904\] has more than 1 elements"):
        codec.from_json("x", "BYTES", [2**62, 2**62], ["a"])
    with pytest.raises(InvalidRequestError, match="has 2 elements but data holds 3"):
        codec.from_json("x", "INT32", [1, 2], [[1, 2, 3]])


def test_hostile_shapes_are_refused_fast() -> None:
    """The old product of 80,000 dimensions of 2**62 took seconds; the refusal is immediate."""
    body = json.dumps({"inputs": [{"name": "x", "datatype": "BYTES", "shape": [2**62] * 80_000, "data": ["a"]}]}).encode()
    started = time.perf_counter()
    with pytest.raises(InvalidRequestError, match="limit of 64 dimensions"):
        codec.parse_rest_request(body, None)
    assert time.perf_counter() - started < 0.5  # the JSON decode of 1.7 MB is most of it


def test_long_values_are_cut_in_messages() -> None:
    assert codec.shown("n" * 1000) == "'" + "n" * 39 + "…"  # 40 characters, then the ellipsis
    assert codec.shown(10**5000) == "<an integer beyond int64>"
    assert codec.shown(-(2**63)) == str(-(2**63))
    assert codec.shown({"a": 1}) == "<a JSON object>"
    huge = str(10**4000).encode()
    body = b'{"inputs": [{"name": "x", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": ' + huge + b"}}]}"
    with pytest.raises(InvalidRequestError, match="binary_data_size <an integer beyond int64> does not fit"):
        codec.parse_rest_request(body, None)
    with pytest.raises(InvalidRequestError, match="must be an integer") as caught:
        codec.parse_rest_request(body, "9" * 8000)  # past Python's 4300-digit limit for int()
    assert len(caught.value.message) < 100
    long_name = json.dumps({"inputs": [{"name": "n" * 100_000, "datatype": "FP8", "shape": [1], "data": [1]}]}).encode()
    with pytest.raises(InvalidRequestError, match="unknown datatype") as caught:
        codec.parse_rest_request(long_name, None)
    assert len(caught.value.message) < 200


def test_huge_int_literals_in_data_are_refused() -> None:
    """Past msgspec's integer limit the body is not JSON we take; below it, out of range."""
    body = b'{"inputs": [{"name": "x", "datatype": "INT64", "shape": [1], "data": [' + b"9" * 5000 + b"]}]}"
    with pytest.raises(InvalidRequestError, match="not valid JSON"):
        codec.parse_rest_request(body, None)
    for datatype in ("INT64", "UINT64", "FP32", "FP64"):
        body = b'{"inputs": [{"name": "x", "datatype": "%s", "shape": [1], "data": [' % datatype.encode() + b"9" * 4000 + b"]}]}"
        with pytest.raises(InvalidRequestError, match="out of range") as caught:
            codec.parse_rest_request(body, None)
        assert len(caught.value.message) < 100


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


def test_flat_and_nested_data_flatten_alike() -> None:
    flat = ["a", "b", "c", "d"]
    assert codec._flatten(flat) is flat  # already flat: no copy, no Python loop
    assert codec._flatten([["a", "b"], ["c", ["d"]]]) == flat
    assert codec.from_json("x", "BYTES", [2, 2], [["a", "b"], ["c", "d"]]).items() == [b"a", b"b", b"c", b"d"]

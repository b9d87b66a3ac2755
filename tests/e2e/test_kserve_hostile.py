"""Hostile KServe v2 shapes and bodies (issue 23, defect 1) against a real server, REST and gRPC:
each is refused with a 400 / INVALID_ARGUMENT that names the limit in a short message, while
`/v2/health/live` keeps answering (tests.helpers.server.assert_responsive), and the server serves normally after.

Before the fix a shape of 20,000 dimensions of 2**62 was multiplied out as a big integer on the
event loop (0.75 s on REST, longer over gRPC), then answered with a 500 raised while formatting
the error message."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
from tritonclient.grpc import service_pb2, service_pb2_grpc

from tests.helpers.server import Server, assert_responsive, start_server
from tests.models import TINY_PROMPTS

ROUNDS = 5  # each hostile request is sent at least this many times while health is probed,
MIN_PROBED_S = 0.5  # and for at least this long, so that probes overlap its handling
MIN_PROBES = 20
HUGE_SHAPE = [2**62] * 20_000  # 420 KB as JSON: the reproduction
INFER = "/v2/models/tiny/infer"
PROMPT = "Say this is a test"


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path) -> Iterator[Server]:
    srv = start_server("--model_path", str(tiny_model_dir), "--model_name", "tiny", "--port", "0")
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


class HealthProbe(threading.Thread):
    """GETs /v2/health/live back to back on one keep-alive connection, timing each answer."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self._port = port
        self.latencies: list[float] = []
        self.statuses: set[int] = set()
        self.stopping = threading.Event()
        self.started_answering = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self._port, timeout=60)
        try:
            while not self.stopping.is_set():
                started = time.perf_counter()
                conn.request("GET", "/v2/health/live")
                response = conn.getresponse()
                response.read()
                self.latencies.append(time.perf_counter() - started)
                self.statuses.add(response.status)
                self.started_answering.set()
                time.sleep(0.002)
        finally:
            conn.close()


@contextmanager
def health_probed(server: Server) -> Iterator[HealthProbe]:
    """Probe health for the duration of the block; then every answer must have come in time."""
    probe = HealthProbe(server.port)
    probe.start()
    assert probe.started_answering.wait(30)
    try:
        yield probe
    finally:  # checked even when the block failed: a stall is worth knowing beside a wrong answer
        probe.stopping.set()
        probe.join(60)
        assert_responsive(probe.latencies)
    assert probe.statuses == {200} and len(probe.latencies) >= MIN_PROBES, (probe.statuses, len(probe.latencies))


def repeatedly(send: Callable[[], None]) -> None:
    """`send` ROUNDS times, and on until MIN_PROBED_S have passed."""
    started, rounds = time.perf_counter(), 0
    while rounds < ROUNDS or time.perf_counter() - started < MIN_PROBED_S:
        send()
        rounds += 1


def post(server: Server, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        conn.request("POST", INFER, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def short_kserve_error(status: int, body: bytes) -> str:
    """The message of a 400 in KServe's error shape, checked to be short."""
    assert status == 400, body[:300]
    error = json.loads(body)["error"]
    assert isinstance(error, str) and 0 < len(error) < 300, error[:300]
    return error


def bytes_input(shape: list[int], data: list[str]) -> bytes:
    return json.dumps({"inputs": [{"name": "text_input", "datatype": "BYTES", "shape": shape, "data": data}]}).encode()


# -- REST --------------------------------------------------------------------------------------


def binary_body(shape: list[int]) -> tuple[bytes, dict[str, str]]:
    raw = b"\x01\x00\x00\x00a"
    header = json.dumps(
        {"inputs": [{"name": "text_input", "datatype": "BYTES", "shape": shape, "parameters": {"binary_data_size": len(raw)}}]}
    ).encode()
    return header + raw, {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(header))}


REST_CASES: list[tuple[str, Callable[[], tuple[bytes, dict[str, str]]], str]] = [
    ("20,000 huge dims in JSON", lambda: (bytes_input(HUGE_SHAPE, ["a"]), {}), "limit of 64 dimensions"),
    ("20,000 huge dims, binary extension", lambda: binary_body(HUGE_SHAPE), "limit of 64 dimensions"),
    ("64 huge dims", lambda: (bytes_input([2**62] * 64, ["a"]), {}), "has more than 1 elements but data holds 1"),
    ("a dimension past int64", lambda: (bytes_input([1, 2**63], ["a"]), {}), "beyond the int64 limit of 9223372036854775807"),
    ("a 4,000-digit dimension", lambda: (bytes_input([10**3999], ["a"]), {}), "beyond the int64 limit"),
    ("a negative dimension", lambda: (bytes_input([1, -(2**62)], ["a"]), {}), "negative dimension"),
    (
        "a 5,000-digit number in data",
        lambda: (b'{"inputs": [{"name": "x", "datatype": "INT64", "shape": [1], "data": [' + b"9" * 5000 + b"]}]}", {}),
        "not valid JSON",
    ),
    (
        "a 4,000-digit number in data",
        lambda: (b'{"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [' + b"9" * 4000 + b"]}]}", {}),
        "out of range for FP64",
    ),
    ("data nested 100,000 deep", lambda: (bytes_input([1], []).replace(b"[]", b"[" * 100_000 + b"]" * 100_000), {}), "nested too deeply"),
]


@pytest.mark.parametrize(("body", "says"), [case[1:] for case in REST_CASES], ids=[case[0] for case in REST_CASES])
def test_rest_hostile_shapes_are_400s_while_health_answers(
    server: Server, body: Callable[[], tuple[bytes, dict[str, str]]], says: str
) -> None:
    data, headers = body()

    def send() -> None:
        error = short_kserve_error(*post(server, data, headers))
        assert says in error, error
        assert "0000000000" not in error and "9999999999" not in error  # no huge value echoed

    with health_probed(server):
        repeatedly(send)


# -- gRPC --------------------------------------------------------------------------------------


def grpc_request(shape: list[int], raw: bool) -> service_pb2.ModelInferRequest:
    """Built with tritonclient's stubs (ours cannot load beside them; see NOTES.md)."""
    request = service_pb2.ModelInferRequest(model_name="tiny", id="hostile")
    tensor = request.inputs.add(name="text_input", datatype="BYTES", shape=shape)
    if raw:
        request.raw_input_contents.append(b"\x01\x00\x00\x00a")
    else:
        tensor.contents.bytes_contents.append(b"a")
    return request


GRPC_CASES = [
    ("20,000 huge dims, bytes_contents", HUGE_SHAPE, False, "limit of 64 dimensions"),
    ("20,000 huge dims, raw_input_contents", HUGE_SHAPE, True, "limit of 64 dimensions"),
    ("64 huge dims, bytes_contents", [2**62] * 64, False, "has more than 1 elements but bytes_contents holds 1"),
    ("64 huge dims, raw_input_contents", [2**62] * 64, True, "has more than 1 elements but the contents hold 1"),
    ("a negative dimension", [1, -1], False, "negative dimension"),
]


@pytest.mark.parametrize(("shape", "raw", "says"), [case[1:] for case in GRPC_CASES], ids=[case[0] for case in GRPC_CASES])
def test_grpc_hostile_shapes_are_invalid_argument_while_health_answers(server: Server, shape: list[int], raw: bool, says: str) -> None:
    request = grpc_request(shape, raw)
    with grpc.insecure_channel(server.grpc_address) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)

        def send() -> None:
            with pytest.raises(grpc.RpcError) as caught:
                stub.ModelInfer(request, timeout=120)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
            details = caught.value.details() or ""
            assert says in details and len(details) < 300, details[:300]

        with health_probed(server):
            repeatedly(send)


def test_grpc_stream_refuses_a_hostile_shape_and_keeps_serving(server: Server) -> None:
    good = grpc_request([1], raw=False)
    good.id = "good"
    good.inputs[0].contents.bytes_contents[0] = PROMPT.encode()
    with grpc.insecure_channel(server.grpc_address) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)

        def send() -> None:
            responses = list(stub.ModelStreamInfer(iter([grpc_request(HUGE_SHAPE, raw=True)]), timeout=120))
            assert len(responses) == 1 and "limit of 64 dimensions" in responses[0].error_message
            assert len(responses[0].error_message) < 300 and responses[0].infer_response.id == "hostile"

        with health_probed(server):
            repeatedly(send)
        pieces = list(stub.ModelStreamInfer(iter([good]), timeout=120))
    assert all(not r.error_message for r in pieces) and pieces[-1].infer_response.parameters["triton_final_response"].bool_param


# -- large bodies --------------------------------------------------------------------------------

MANY = 700_000  # empty strings: a 2 MB body, decoded in a thread (codec.DECODE_IN_THREAD_BYTES)


def test_large_rest_body_is_decoded_off_the_loop(server: Server) -> None:
    """Before, a 2 MB body of 700,000 elements held the event loop for 0.4-1.4 s."""
    body = b'{"inputs": [{"name": "text_input", "datatype": "BYTES", "shape": [%d], "data": [' % MANY + b",".join([b'""'] * MANY) + b"]}]}"

    def send() -> None:
        assert "must hold exactly one element" in short_kserve_error(*post(server, body))

    with health_probed(server):
        repeatedly(send)


def test_large_grpc_message_is_decoded_off_the_loop(server: Server) -> None:
    request = grpc_request([MANY], raw=False)
    request.inputs[0].contents.bytes_contents.extend([b""] * (MANY - 1))
    with grpc.insecure_channel(server.grpc_address) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)

        def send() -> None:
            with pytest.raises(grpc.RpcError) as caught:
                stub.ModelInfer(request, timeout=120)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "must hold exactly one element" in (caught.value.details() or "")

        with health_probed(server):
            repeatedly(send)


# -- afterwards ----------------------------------------------------------------------------------


def test_normal_inference_still_works(server: Server) -> None:
    """Run last in the module: the hostile requests left the server serving on both protocols."""
    with thttp.InferenceServerClient(f"127.0.0.1:{server.port}") as rest:
        tensor = thttp.InferInput("text_input", [1], "BYTES")
        tensor.set_data_from_numpy(np.array([PROMPT.encode()], dtype=object))
        assert rest.infer("tiny", [tensor]).as_numpy("text_output").tolist() == [TINY_PROMPTS[PROMPT].encode()]
    client = tgrpc.InferenceServerClient(server.grpc_address)
    try:
        tensor = tgrpc.InferInput("text_input", [1, 1], "BYTES")
        tensor.set_data_from_numpy(np.array([[PROMPT.encode()]], dtype=object))
        assert client.infer("tiny", [tensor]).as_numpy("text_output").reshape(-1).tolist() == [TINY_PROMPTS[PROMPT].encode()]
    finally:
        client.close()

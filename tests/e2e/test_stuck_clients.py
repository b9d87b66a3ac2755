"""Issue 23, defect 5 (the rest): clients that stop reading, against a real server on the tiny
model with one running slot and no queue, so a request that keeps its slot shuts every later
one out (429).

- KServe gRPC ModelStreamInfer: the call's responses waiting for a client that does not read
  are bounded by --max_unsent_bytes; beyond, its requests are cancelled (the engine drops them)
  and the call ends with RESOURCE_EXHAUSTED.
- Stuck writers (--send_timeout): a stream whose last bytes, or a JSON answer that, do not fit
  the socket of a client that stopped reading is cut after SEND_TIMEOUT_S of no progress, which
  frees the slot; before, the handler waited for the client to close (the stream held its slot
  all that while; a JSON answer, written after the handler returned, held its task, body and
  connection).

Socket buffers: a loopback client with SO_RCVBUF 4096 that never reads absorbs about 3 MB
(kernel send + receive buffers, measured), so each case sends more than that on one connection
(pipelined requests), and the first answer that does not fit is the stuck one.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from tritonclient.grpc import service_pb2, service_pb2_grpc

from tests.helpers.backpressure import FRONT_END_STREAMS, engine, metric, poll, request_bytes
from tests.helpers.http import CHAT, post, user
from tests.helpers.server import Server, start_server
from tests.models import TINY_PROMPTS

BOUND_S = 120  # guards against a hang only
SEND_TIMEOUT_S = 1.0  # nobody reads the stuck sockets: any stall is for good; short keeps the test short
# Above one logprobs stream of the tiny model (~180 KB), so a stream stuck at its end is cut by
# --send_timeout, not by this bound; far below the gRPC case's output (see that test).
MAX_UNSENT = 512 * 1024
NOT_READING = 'ovserve_requests_rejected_total{reason="not_reading"}'
LONG = {"model": "tiny", "messages": user("Tell me a story."), "max_tokens": 480, "ignore_eos": True}
SAY = "Say this is a test"


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path) -> Iterator[Server]:
    srv = start_server(
        "--model_path",
        str(tiny_model_dir),
        "--model_name",
        "tiny",
        "--port",
        "0",
        "--max_concurrent_requests",
        "1",
        "--max_queued_requests",
        "0",
        "--send_timeout",
        str(SEND_TIMEOUT_S),
        "--max_unsent_bytes",
        str(MAX_UNSENT),
        "--metrics_enable",
    )
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output[-50:])
    assert not [line for line in srv.output if "Traceback" in line or " ERROR " in line], "\n".join(srv.output[-80:])


def served_normally(server: Server) -> bool:
    """A chat request gets its answer (not a 429: the slot is free)."""
    status, _, body = post(server, CHAT, {"model": "tiny", "messages": user(SAY)})
    if status == 429:
        return False
    assert status == 200, body
    assert json.loads(body)["choices"][0]["message"]["content"] == TINY_PROMPTS[SAY]
    return True


def warnings(server: Server, text: str) -> list[str]:
    return [line for line in server.output if text in line]


def stuck_connection(server: Server, body: dict[str, Any], count: int, path: str = CHAT) -> socket.socket:
    """`count` requests pipelined on one connection whose client never reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: the buffers fill sooner
    sock.connect(("127.0.0.1", server.port))
    sock.sendall(request_bytes(path, body) * count)
    return sock


def received_until_closed(sock: socket.socket) -> bytes:
    """What the server sent before it closed (or reset) the connection."""
    sock.settimeout(BOUND_S)
    received = bytearray()
    try:
        while chunk := sock.recv(1 << 20):
            received += chunk
    except ConnectionResetError:
        pass
    return bytes(received)


def test_a_stream_stuck_at_its_end_frees_its_slot(server: Server) -> None:
    """30 logprobs streams (~180 KB each, ~5 MB in all) pipelined: the one that finds the
    buffers full is stuck (its output stays under --max_unsent_bytes, so only --send_timeout
    can free it); cut, the slot serves a later request."""
    before, cut = metric(server, NOT_READING), len(warnings(server, "--send_timeout"))
    sock = stuck_connection(server, {**LONG, "stream": True, "logprobs": True}, 30)
    try:
        poll("the stuck stream cut", lambda: metric(server, NOT_READING) == before + 1)
        poll("a later request served", lambda: served_normally(server))
        poll("the engine idle", lambda: engine(server)["running"] == 0 and engine(server)["active_requests"] == 0)
        received = received_until_closed(sock)
    finally:
        sock.close()
    assert received.count(b"HTTP/1.1 200") < 30 and not received.endswith(b"0\r\n\r\n")  # cut short
    new = warnings(server, "--send_timeout")[cut:]
    assert len(new) == 1 and "WARNING" in new[0], new
    assert not warnings(server, "stopped reading (over"), "cut by --max_unsent_bytes, not by the send bound"


@pytest.mark.parametrize("front_end", FRONT_END_STREAMS)
def test_a_front_end_stream_stuck_is_cut_by_the_send_timeout(server: Server, front_end: str) -> None:
    """As above, on the Responses and Anthropic streams: the stuck one is cut after
    --send_timeout, counted once, and the freed slot answers the same front end exactly."""
    path, stream, pipelined, ask, text_of = FRONT_END_STREAMS[front_end]

    def served() -> bool:
        status, _, body = post(server, path, ask)
        if status == 429:
            return False
        assert status == 200, body
        assert text_of(json.loads(body)) == TINY_PROMPTS[SAY]
        return True

    before, cut = metric(server, NOT_READING), len(warnings(server, "--send_timeout"))
    overs = len(warnings(server, "stopped reading (over"))
    sock = stuck_connection(server, stream, pipelined, path)
    try:
        poll("the stuck stream cut", lambda: metric(server, NOT_READING) == before + 1)
        poll("a later request served", served)
        poll("the engine idle", lambda: engine(server)["running"] == 0 and engine(server)["active_requests"] == 0)
        received = received_until_closed(sock)
    finally:
        sock.close()
    assert received.count(b"HTTP/1.1 200") < pipelined and not received.endswith(b"0\r\n\r\n")  # cut short
    new = warnings(server, "--send_timeout")[cut:]
    assert len(new) == 1 and "WARNING" in new[0], new
    assert len(warnings(server, "stopped reading (over")) == overs, "cut by --max_unsent_bytes, not by the send bound"


def test_a_json_answer_that_does_not_fit_is_cut(server: Server) -> None:
    """8 non-streaming answers of n=20 logprobs choices (~1 MB each) pipelined: the one that
    does not fit waits in aiohttp's write after the handler returned; it is cut after
    --send_timeout (before: it waited until the client closed)."""
    body = {**LONG, "logprobs": True, "n": 20, "temperature": 1.0}
    before, cut = metric(server, NOT_READING), len(warnings(server, "--send_timeout"))
    sock = stuck_connection(server, body, 8)
    try:
        poll("the stuck answer cut", lambda: metric(server, NOT_READING) == before + 1)
        received = received_until_closed(sock)
        poll("a later request served", lambda: served_normally(server))
    finally:
        sock.close()
    answers = received.count(b"HTTP/1.1 200")
    assert 1 <= answers < 8, answers
    assert not received.endswith(b"}")  # the last answer cut short
    new = warnings(server, "--send_timeout")[cut:]
    assert len(new) == 1 and "WARNING" in new[0], new


def grpc_request(request_id: str, prompt: str, max_tokens: int | None = None) -> Any:
    request = service_pb2.ModelInferRequest(model_name="tiny", id=request_id)
    tensor = request.inputs.add(name="text_input", datatype="BYTES", shape=[1])
    tensor.contents.bytes_contents.append(prompt.encode())
    if max_tokens is not None:
        request.parameters["max_tokens"].int64_param = max_tokens
        request.parameters["ignore_eos"].bool_param = True
    return request


def test_a_grpc_stream_nobody_reads_is_cancelled(server: Server) -> None:
    """One ModelStreamInfer request of 480 tokens whose client never reads. HTTP/2 flow control
    lets the client's transport take a window of responses unread (about 4 MiB here: grpc's BDP
    probing grows it), and only then does the server's writer stall; the tiny model's output
    (~15 KB) would fit that window many times over. So the request's id, which every response
    echoes, is 96 KB: ~160 responses make ~15 MB, over the window plus --max_unsent_bytes
    (4.5 MiB) three times over, whatever the window grows to within that. The engine request is
    cancelled (before: it ran to its end into an unbounded queue), the call ends with
    RESOURCE_EXHAUSTED once the client reads on, and the server serves on."""
    before, warned = engine(server), len(warnings(server, "ModelStreamInfer client stopped reading"))
    rejected = metric(server, NOT_READING)
    open_requests = threading.Event()

    def requests() -> Iterator[Any]:
        yield grpc_request("r" + "x" * 96_000, "Tell me a story.", max_tokens=480)
        open_requests.wait(BOUND_S)  # the request stream stays open meanwhile

    with grpc.insecure_channel(server.grpc_address) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        responses = stub.ModelStreamInfer(requests(), timeout=BOUND_S)  # and not read, for now
        try:
            poll("the call's request cancelled", lambda: metric(server, NOT_READING) == rejected + 1)
            poll("the engine idle", lambda: engine(server)["running"] == 0 and engine(server)["active_requests"] == 0)
            stats = engine(server)
            assert stats.get("cancelled", 0) == before.get("cancelled", 0) + 1, stats
            assert stats.get("finished", 0) == before.get("finished", 0), stats
            assert served_normally(server)  # the slot is free while the client still holds its call
            with pytest.raises(grpc.RpcError) as ended:
                for _ in responses:  # what the window held, then the status
                    pass
        finally:
            open_requests.set()
            responses.cancel()
        assert ended.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "stopped reading" in ended.value.details() and "--max_unsent_bytes" in ended.value.details()
        # the server serves on, gRPC streams included
        pieces = list(stub.ModelStreamInfer(iter([grpc_request("after", SAY)]), timeout=BOUND_S))
    assert not any(p.error_message for p in pieces)
    text = b"".join(p.infer_response.raw_output_contents[0][4:] for p in pieces if p.infer_response.raw_output_contents)
    assert text.decode() == TINY_PROMPTS[SAY]
    new = warnings(server, "ModelStreamInfer client stopped reading")[warned:]
    assert len(new) == 1 and "WARNING" in new[0], new

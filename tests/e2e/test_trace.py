"""Per-request traces on a real server (`--trace header --trace_dir DIR`) on the tiny model: the
trace of a request agrees with what the client received, packet for packet."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.helpers.http import CHAT, assert_openai_error, get, post, user
from tests.helpers.server import ROOT, Server, start_server, wait_for
from tests.models import TINY_COMPLETIONS, TINY_PROMPTS

STOCK_NODES = ["request", "tokenizer", "llm", "detokenizer", "response"]
TRACE = {"X-Ovserve-Trace": "1"}
HTTP_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def trace_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("traces")


@pytest.fixture(scope="module")
def traced_server(tiny_model_dir: Path, trace_dir: Path) -> Iterator[Server]:
    srv = start_server(
        "--model_path", str(tiny_model_dir), "--model_name", "tiny", "--trace", "header", "--trace_dir", str(trace_dir), "--port", "0"
    )
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


def get_json(server: Server, path: str) -> Any:
    status, body = get(server, path)
    assert status == 200, body
    return json.loads(body)


def summary_nodes(server: Server, trace_id: str) -> dict[str, dict[str, Any]]:
    """The trace's nodes once its run has ended: a client has its answer (`[DONE]`) a moment
    before the server has closed every node, so wait for that (bounded)."""
    wait_for(lambda: get_json(server, f"/debug/traces/{trace_id}/summary")["complete"], f"trace {trace_id} to complete")
    summary = get_json(server, f"/debug/traces/{trace_id}/summary")
    assert summary["id"] == trace_id and summary["error"] is None, summary
    return {node["node"]: node for node in summary["nodes"]}


def chunked_stream(server: Server, path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[dict[str, str], list[bytes]]:
    """POST over a bare socket and split the HTTP/1.1 chunked body into its chunks, as sent."""
    data = json.dumps(body).encode()
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", "Content-Type: application/json", f"Content-Length: {len(data)}"]
    head += [f"{k}: {v}" for k, v in headers.items()] + ["Connection: close"]
    with socket.create_connection(("127.0.0.1", server.port), timeout=HTTP_TIMEOUT_S) as sock:
        sock.sendall("\r\n".join(head).encode() + b"\r\n\r\n" + data)
        raw = b""
        while part := sock.recv(65536):
            raw += part
    header_block, rest = raw.split(b"\r\n\r\n", 1)
    status_line, *lines = header_block.decode().split("\r\n")
    assert status_line.startswith("HTTP/1.1 200"), raw[:500]
    response_headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    assert response_headers["transfer-encoding"] == "chunked"
    chunks = []
    while True:
        size_line, rest = rest.split(b"\r\n", 1)
        size = int(size_line, 16)
        if size == 0:
            return response_headers, chunks
        chunks.append(rest[:size])
        assert rest[size : size + 2] == b"\r\n"
        rest = rest[size + 2 :]


def check_stock_flow(nodes: dict[str, dict[str, Any]], unary: bool = False) -> None:
    """The stock chain's counts agree with each other. A unary answer is returned as soon as the
    response node emits it: the run is then closed, maybe before the LLM node's task ended."""
    assert list(nodes) == STOCK_NODES
    llm, detokenizer, response = nodes["llm"], nodes["detokenizer"], nodes["response"]
    assert nodes["request"]["packets_out"] == {"REQUEST": 1} and nodes["tokenizer"]["packets_out"] == {"TOKENS": 1}
    generation = llm["packets_out"]["GENERATION"]
    assert generation >= 1
    # one detokenizer call per GENERATION packet (the REQUEST packet joins the first one)
    assert detokenizer["process_calls"] == generation == detokenizer["packets_in"]["GENERATION"]
    assert detokenizer["packets_in"]["REQUEST"] == 1 and detokenizer["inline"] and response["inline"]
    assert response["packets_in"]["TEXT"] == detokenizer["packets_out"]["TEXT"]
    for node in nodes.values():
        assert node["open_ms"] is not None and node["close_ms"] is not None, node
        assert node["error"] is None and (unary or not node["cancelled"]), node
    assert llm["tasks"] == 1  # the generation, spawned by its one process() call


def test_streaming_chat_trace_matches_what_the_client_saw(traced_server: Server) -> None:
    prompt = "Say this is a test"
    with openai.OpenAI(base_url=traced_server.base_url + "/v3", api_key="x", max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="tiny", messages=user(prompt), stream=True, stream_options={"include_usage": True}, extra_headers=TRACE
        )
        trace_id = raw.headers["x-ovserve-trace-id"]
        chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == TINY_PROMPTS[prompt]
    usage = chunks[-1].usage
    assert usage is not None
    nodes = summary_nodes(traced_server, trace_id)
    check_stock_flow(nodes)
    # every GENERATION packet brings at least one token
    assert nodes["llm"]["packets_out"]["GENERATION"] <= usage.completion_tokens
    # The response node's packets are the HTTP chunks; one may carry several SSE events (the role
    # comes with the first text, the usage chunk with the last): never more packets than events.
    assert 1 <= nodes["response"]["packets_out"]["HTTP_RESPONSE_PAYLOAD"] <= len(chunks)

    exported = get_json(traced_server, f"/debug/traces/{trace_id}")
    assert exported["displayTimeUnit"] == "ms" and exported["otherData"]["trace_id"] == trace_id
    events = exported["traceEvents"]
    threads = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    node_tids = {name.split(" ")[0]: tid for tid, name in threads.items() if "(" in name}
    assert list(node_tids) == STOCK_NODES
    spans = Counter((e["tid"], e["name"]) for e in events if e["ph"] == "X")
    for name, tid in node_tids.items():
        assert spans[(tid, "open")] == spans[(tid, "close")] == spans[(tid, name)] == 1, name
        assert spans[(tid, "process")] == nodes[name]["process_calls"], name
    assert "llm spawned tasks" in threads.values()
    # names, times and counts only: nothing the user sent or got
    text_of_trace = json.dumps([exported, nodes])
    assert prompt not in text_of_trace and TINY_PROMPTS[prompt] not in text_of_trace


@pytest.mark.parametrize("path", ["/v3/completions", CHAT])
def test_streamed_http_chunks_are_the_response_nodes_packets(traced_server: Server, path: str) -> None:
    prompt = "The quick brown fox"
    body: dict[str, Any] = {"model": "tiny", "stream": True, "stream_options": {"include_usage": True}}
    body.update({"prompt": prompt, "max_tokens": 8} if path == "/v3/completions" else {"messages": user(prompt)})
    headers, chunks = chunked_stream(traced_server, path, body, TRACE)
    assert chunks[-1].endswith(b"data: [DONE]\n\n")
    nodes = summary_nodes(traced_server, headers["x-ovserve-trace-id"])
    check_stock_flow(nodes)
    assert nodes["response"]["packets_out"]["HTTP_RESPONSE_PAYLOAD"] == len(chunks)
    if path == "/v3/completions":
        events = [json.loads(e[6:]) for c in chunks for e in c.decode().split("\n\n") if e.startswith("data: {")]
        text = "".join(e["choices"][0]["text"] for e in events if e["choices"])
        assert text and TINY_COMPLETIONS[prompt].startswith(text)


def test_unary_and_kserve_requests_are_traced_too(traced_server: Server) -> None:
    status, headers, _ = post(traced_server, CHAT, {"model": "tiny", "messages": user("Say this is a test")}, TRACE)
    assert status == 200
    nodes = summary_nodes(traced_server, headers["X-Ovserve-Trace-Id"])
    check_stock_flow(nodes, unary=True)
    assert nodes["response"]["packets_out"] == {"HTTP_RESPONSE_PAYLOAD": 1}  # one JSON body
    infer = {"inputs": [{"name": "text_input", "datatype": "BYTES", "shape": [1], "data": ["Say this is a test"]}]}
    status, headers, raw = post(traced_server, "/v2/models/tiny/infer", infer, TRACE)
    assert status == 200, raw
    listed = {t["id"]: t for t in get_json(traced_server, "/debug/traces")["data"]}
    assert listed[headers["X-Ovserve-Trace-Id"]]["endpoint"] == "chat/completions"
    check_stock_flow(summary_nodes(traced_server, headers["X-Ovserve-Trace-Id"]), unary=True)


def test_grpc_calls_are_traced_when_their_metadata_asks(traced_server: Server) -> None:
    import tritonclient.grpc as tgrpc

    from tests.helpers.kserve import stream_all, text_input, texts

    before = [t["id"] for t in get_json(traced_server, "/debug/traces")["data"]]
    client = tgrpc.InferenceServerClient(traced_server.grpc_address)
    try:
        plain = client.infer("tiny", [text_input(tgrpc, "Say this is a test")])
        assert "ovserve_trace_id" not in plain.get_response().parameters
        assert [t["id"] for t in get_json(traced_server, "/debug/traces")["data"]] == before
        traced = client.infer("tiny", [text_input(tgrpc, "Say this is a test")], headers={"x-ovserve-trace": "1"})
        assert texts(traced) == [TINY_PROMPTS["Say this is a test"]]
        unary_id = traced.get_response().parameters["ovserve_trace_id"].string_param
        check_stock_flow(summary_nodes(traced_server, unary_id), unary=True)
        final = stream_all(client, {"s": "Count to five."}, headers={"x-ovserve-trace": "1"})["s"][-1].get_response()
    finally:
        client.close()
    stream_id = final.parameters["ovserve_trace_id"].string_param
    # KServe returns at the stream's end, like a unary answer: the LLM node may still be ending
    check_stock_flow(summary_nodes(traced_server, stream_id), unary=True)
    listed = get_json(traced_server, "/debug/traces")["data"]
    assert [t["id"] for t in listed][:2] == [stream_id, unary_id]
    assert [t["route"] for t in listed][:2] == ["gRPC ModelStreamInfer", "gRPC ModelInfer"]


#: One chat per API, and the route each trace is labelled with (the graph's endpoint is the same).
API_CHATS = [
    ("/v3/chat/completions", {"model": "tiny", "messages": user("Say this is a test")}),
    ("/v3/completions", {"model": "tiny", "prompt": "Say this is a test", "max_tokens": 4}),
    ("/v1/messages", {"model": "tiny", "max_tokens": 64, "messages": user("Say this is a test")}),
    ("/v3/responses", {"model": "tiny", "input": "Say this is a test"}),
    ("/api/chat", {"model": "tiny", "messages": user("Say this is a test"), "stream": False}),
    ("/api/generate", {"model": "tiny", "prompt": "Say this is a test", "stream": False}),
    ("/v2/models/tiny/infer", {"inputs": [{"name": "text_input", "datatype": "BYTES", "shape": [1], "data": ["hi"]}]}),
]


@pytest.mark.parametrize(("path", "body"), API_CHATS, ids=[path for path, _ in API_CHATS])
def test_traces_are_labelled_with_their_api_route(traced_server: Server, path: str, body: dict[str, Any]) -> None:
    status, headers, raw = post(traced_server, path, body, TRACE)
    assert status == 200, raw
    listed = {t["id"]: t for t in get_json(traced_server, "/debug/traces")["data"]}
    route = "POST /v2/models/{name}/infer" if path.startswith("/v2") else f"POST {path}"
    assert listed[headers["X-Ovserve-Trace-Id"]]["route"] == route


def test_requests_without_the_header_are_not_traced(traced_server: Server) -> None:
    before = [t["id"] for t in get_json(traced_server, "/debug/traces")["data"]]
    with openai.OpenAI(base_url=traced_server.base_url + "/v3", api_key="x", max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(model="tiny", messages=user("Say this is a test"), stream=True)
        assert "x-ovserve-trace-id" not in raw.headers
        list(raw.parse())
        declined = client.chat.completions.with_raw_response.create(
            model="tiny", messages=user("Say this is a test"), extra_headers={"X-Ovserve-Trace": "0"}
        )
        assert "x-ovserve-trace-id" not in declined.headers
    assert [t["id"] for t in get_json(traced_server, "/debug/traces")["data"]] == before


def test_listing_and_unknown_ids(traced_server: Server) -> None:
    _, headers, _ = post(traced_server, CHAT, {"model": "tiny", "messages": user("Say this is a test")}, TRACE)
    newest = get_json(traced_server, "/debug/traces")["data"][0]
    assert newest["id"] == headers["X-Ovserve-Trace-Id"]
    assert newest["servable"] == "tiny" and newest["endpoint"] == "chat/completions" and newest["route"] == "POST /v3/chat/completions"
    assert newest["complete"] and newest["duration_ms"] > 0 and newest["error"] is None
    status, body = get(traced_server, "/debug/traces/0123456789abcdef")
    error = assert_openai_error(status, body, 404, param="trace_id")
    assert error["code"] == "trace_not_found"
    status, body = get(traced_server, "/debug/traces/0123456789abcdef/summary")
    assert_openai_error(status, body, 404, param="trace_id")


def test_a_failed_request_is_traced_with_its_error(traced_server: Server) -> None:
    status, headers, body = post(traced_server, CHAT, {"model": "tiny", "messages": user("hi"), "n": 2}, TRACE)  # n > 1 needs sampling
    assert_openai_error(status, body, 400)
    summary = get_json(traced_server, f"/debug/traces/{headers['X-Ovserve-Trace-Id']}/summary")
    assert summary["complete"] and summary["error"] == "InvalidRequestError" and summary["failed_node"] in STOCK_NODES
    assert "sampling" not in json.dumps(summary)  # the type only, not the message


def test_trace_dir_gets_each_trace_as_a_file(traced_server: Server, trace_dir: Path) -> None:
    _, headers, _ = post(traced_server, CHAT, {"model": "tiny", "messages": user("Say this is a test")}, TRACE)
    trace_id = headers["X-Ovserve-Trace-Id"]
    path = trace_dir / f"{trace_id}.json"
    wait_for(path.exists, f"{path} to be written", limit_s=30)
    written = json.loads(path.read_text(encoding="utf-8"))
    assert written == get_json(traced_server, f"/debug/traces/{trace_id}")
    assert not list(trace_dir.glob("*.partial"))


def test_an_unusable_trace_dir_is_one_line_and_exit_2(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = subprocess.run(
        [sys.executable, "-m", "serving.cli", "--model_path", str(tmp_path), "--trace_dir", str(blocker / "traces")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith(f"--trace_dir {blocker / 'traces'}: Not a directory")

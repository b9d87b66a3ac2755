"""KServe v2 over REST and gRPC with the real tritonclient (http and grpc) against real servers:
one with a text-generation, an embeddings and a rerank servable, one with an API key."""

from __future__ import annotations

import http.client
import json
import queue
import ssl
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent.ssl
import grpc
import numpy as np
import pytest
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.utils import InferenceServerException

from tests.helpers.http import post
from tests.helpers.kserve import stream_all, text_input, texts
from tests.helpers.servables import three_servables
from tests.helpers.server import Server, start_server
from tests.helpers.tls import make_certificate
from tests.models import TINY_COMPLETIONS, TINY_PROMPTS

KEY = "sk-kserve-0123456789"
SENTENCES = ["A man is playing a guitar.", "Someone plays an instrument.", "The stock market fell today."]


@pytest.fixture(scope="module")
def server(
    tiny_model_dir: Path, minilm_model_dir: Path, tiny_reranker_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    config = three_servables(tmp_path_factory.mktemp("kserve"), tiny_model_dir, minilm_model_dir, tiny_reranker_dir)
    srv = start_server("--config_path", str(config), "--port", "0", "--metrics_enable")
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


@pytest.fixture(scope="module")
def secured(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    """A server with an API key and TLS (REST and gRPC); the certificate to trust."""
    folder = tmp_path_factory.mktemp("kserve-secured")
    cert, key = make_certificate(folder)
    (folder / "api-key.txt").write_text(KEY + "\n")
    srv = start_server(
        "--model_path", str(tiny_model_dir), "--model_name", "tiny", "--api_key_file", str(folder / "api-key.txt"),
        "--ssl_certfile", str(cert), "--ssl_keyfile", str(key), "--port", "0",
    )  # fmt: skip
    yield srv, cert
    assert srv.stop() == 0, "\n".join(srv.output)


@pytest.fixture(scope="module")
def grpc_client(server: Server) -> Iterator[tgrpc.InferenceServerClient]:
    client = tgrpc.InferenceServerClient(server.grpc_address)
    yield client
    client.close()


@pytest.fixture(scope="module")
def http_client(server: Server) -> Iterator[thttp.InferenceServerClient]:
    client = thttp.InferenceServerClient(f"127.0.0.1:{server.port}")
    yield client
    client.close()


def get(server: Server, path: str, headers: dict[str, str] | None = None, cert: Path | None = None) -> tuple[int, bytes]:
    if cert is None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    else:
        conn = http.client.HTTPSConnection("127.0.0.1", server.port, timeout=60, context=ssl.create_default_context(cafile=str(cert)))
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def kserve_error(status: int, body: bytes, expected: int) -> str:
    assert status == expected, body
    error = json.loads(body)["error"]
    assert isinstance(error, str) and error
    return error


# -- health and metadata ---------------------------------------------------------------------


def test_grpc_health_and_metadata(server: Server, grpc_client: tgrpc.InferenceServerClient) -> None:
    assert server.grpc_address == f"127.0.0.1:{server.grpc_port}"
    assert grpc_client.is_server_live() and grpc_client.is_server_ready()
    assert grpc_client.is_model_ready("tiny") and grpc_client.is_model_ready("tiny", "1") and grpc_client.is_model_ready("minilm")
    meta = grpc_client.get_server_metadata(as_json=True)
    assert meta["name"] == "ovserve" and meta["version"] and set(meta["extensions"]) == {"binary_tensor_data", "parameters"}
    model = grpc_client.get_model_metadata("tiny", as_json=True)
    assert model["name"] == "tiny" and model["versions"] == ["1"]
    assert model["inputs"] == [{"name": "text_input", "datatype": "BYTES", "shape": ["1"]}]  # int64 as JSON strings
    assert model["outputs"] == [{"name": "text_output", "datatype": "BYTES", "shape": ["-1"]}]
    embeddings = grpc_client.get_model_metadata("minilm", as_json=True)
    assert embeddings["outputs"] == [{"name": "embeddings", "datatype": "FP32", "shape": ["-1", "-1"]}]
    for call in (
        lambda: grpc_client.get_model_metadata("nope"),
        lambda: grpc_client.is_model_ready("nope"),
        lambda: grpc_client.is_model_ready("tiny", "2"),
    ):
        with pytest.raises(InferenceServerException) as caught:
            call()
        assert caught.value.status() == "StatusCode.NOT_FOUND"


def test_grpc_health_service(server: Server) -> None:
    with grpc.insecure_channel(server.grpc_address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "inference.GRPCInferenceService"):
            assert stub.Check(health_pb2.HealthCheckRequest(service=service)).status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as caught:
            stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_rest_health_and_metadata(server: Server, http_client: thttp.InferenceServerClient) -> None:
    assert http_client.is_server_live() and http_client.is_server_ready()
    assert http_client.is_model_ready("tiny") and http_client.is_model_ready("tiny", "1")
    assert not http_client.is_model_ready("nope")
    meta = http_client.get_server_metadata()
    assert meta["name"] == "ovserve" and set(meta["extensions"]) == {"binary_tensor_data", "parameters"}
    model = http_client.get_model_metadata("tiny", "1")
    assert model == {
        "name": "tiny",
        "versions": ["1"],
        "platform": "ovserve_graph",
        "inputs": [{"name": "text_input", "datatype": "BYTES", "shape": [1]}],
        "outputs": [{"name": "text_output", "datatype": "BYTES", "shape": [-1]}],
    }
    assert kserve_error(*get(server, "/v2/models/nope"), 404) == "model 'nope' not found"
    assert "no version '2'" in kserve_error(*get(server, "/v2/models/tiny/versions/2/ready"), 404)
    assert get(server, "/v2/models/tiny/versions/1/ready")[0] == 200
    assert get(server, "/v2/health/live")[0] == 200 and get(server, "/v2/health/ready")[0] == 200


# -- inference -------------------------------------------------------------------------------


def test_grpc_infer_plain_prompt(grpc_client: tgrpc.InferenceServerClient) -> None:
    for prompt in ("Say this is a test", "Say hello in French."):
        result = grpc_client.infer("tiny", [text_input(tgrpc, prompt)], request_id="r-1")
        assert texts(result) == [TINY_PROMPTS[prompt]]
        response = result.get_response()
        assert response.id == "r-1" and response.model_name == "tiny" and response.model_version == "1"
        assert response.parameters["finish_reason"].string_param == "stop"
        assert response.parameters["completion_tokens"].int64_param > 0


def scrape(server: Server, family: str, model: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    status, body = get(server, "/metrics")
    assert status == 200
    for metric in text_string_to_metric_families(body.decode()):
        for sample in metric.samples:
            if sample.name == family and sample.labels.get("model") == model:
                return float(sample.value)
    return 0.0


def test_grpc_requests_reach_the_token_metrics(server: Server, grpc_client: tgrpc.InferenceServerClient) -> None:
    before = {f: scrape(server, f, "tiny") for f in ("ovserve_generated_tokens_total", "ovserve_time_to_first_token_seconds_count")}
    result = grpc_client.infer("tiny", [text_input(tgrpc, "Say this is a test")])
    generated = result.get_response().parameters["completion_tokens"].int64_param
    assert scrape(server, "ovserve_generated_tokens_total", "tiny") == before["ovserve_generated_tokens_total"] + generated
    ttft = "ovserve_time_to_first_token_seconds_count"
    assert scrape(server, ttft, "tiny") == before[ttft] + 1


def test_grpc_infer_openai_json_and_parameters(grpc_client: tgrpc.InferenceServerClient) -> None:
    chat = json.dumps({"messages": [{"role": "user", "content": "What is the capital of France?"}]})
    assert texts(grpc_client.infer("tiny", [text_input(tgrpc, chat)])) == [TINY_PROMPTS["What is the capital of France?"]]
    completion = json.dumps({"prompt": "The quick brown fox", "max_tokens": 30})
    assert texts(grpc_client.infer("tiny", [text_input(tgrpc, completion)])) == [TINY_COMPLETIONS["The quick brown fox"]]
    # Request parameters are OpenAI fields on top of the body.
    result = grpc_client.infer("tiny", [text_input(tgrpc, "Count to five.")], parameters={"max_tokens": 3, "temperature": 0.0})
    (short,) = texts(result)
    assert short and TINY_PROMPTS["Count to five."].startswith(short) and short != TINY_PROMPTS["Count to five."]
    assert result.get_response().parameters["finish_reason"].string_param == "length"
    assert result.get_response().parameters["completion_tokens"].int64_param == 3


def test_grpc_stream_pieces_add_up(grpc_client: tgrpc.InferenceServerClient) -> None:
    prompts = {"a": "Tell me a story.", "b": "Say hello in French."}
    collected = stream_all(grpc_client, prompts)
    for request_id, prompt in prompts.items():
        results = collected[request_id]
        pieces = [piece for r in results for piece in texts(r)]
        assert "".join(pieces) == TINY_PROMPTS[prompt]
        assert len(results) > 2  # streamed: several pieces, then the final response
        final = results[-1].get_response()
        assert [r.get_response().parameters["triton_final_response"].bool_param for r in results].count(True) == 1
        assert final.parameters["finish_reason"].string_param == "stop" and texts(results[-1]) == [""]
        whole = texts(grpc_client.infer("tiny", [text_input(tgrpc, prompt)]))
        assert whole == ["".join(pieces)]


def test_grpc_stream_empty_final_response(grpc_client: tgrpc.InferenceServerClient) -> None:
    results = stream_all(grpc_client, {"x": "Count to five."}, enable_empty_final_response=True)["x"]
    assert results[-1].as_numpy("text_output") is None  # no outputs on the final response
    assert "".join(piece for r in results[:-1] for piece in texts(r)) == TINY_PROMPTS["Count to five."]


def test_grpc_typed_contents_and_raw_stubs(server: Server) -> None:
    """Inputs in `contents.bytes_contents` (not raw) through tritonclient's own generated stubs:
    the wire format is the published one."""
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    request = service_pb2.ModelInferRequest(model_name="tiny", id="typed")
    tensor = request.inputs.add(name="text_input", datatype="BYTES", shape=[1, 1])
    tensor.contents.bytes_contents.append(b"Say this is a test")
    request.parameters["max_tokens"].int64_param = 30
    with grpc.insecure_channel(server.grpc_address) as channel:
        response = service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request)
    assert response.id == "typed" and response.outputs[0].name == "text_output" and list(response.outputs[0].shape) == [1]
    assert response.raw_output_contents[0] == struct.pack("<I", len(b"This is a test.")) + b"This is a test."


def test_rest_infer_binary_and_json(http_client: thttp.InferenceServerClient, server: Server) -> None:
    prompt = "What color is the sky?"
    binary = http_client.infer("tiny", [text_input(thttp, prompt)], request_id="b")  # tritonclient's default: binary in and out
    assert texts(binary) == [TINY_PROMPTS[prompt]]
    assert binary.get_response()["outputs"][0]["parameters"]["binary_data_size"] > 0
    as_json = http_client.infer(
        "tiny", [text_input(thttp, prompt, binary=False)], outputs=[thttp.InferRequestedOutput("text_output", binary_data=False)]
    )
    assert as_json.get_response()["outputs"][0]["data"] == [TINY_PROMPTS[prompt]]
    assert as_json.get_response()["parameters"]["finish_reason"] == "stop"
    # Plain JSON, by hand, with a version in the path.
    body = {"id": "j", "inputs": [{"name": "text_input", "datatype": "BYTES", "shape": [1], "data": ["Say this is a test"]}]}
    status, headers, raw = post(server, "/v2/models/tiny/versions/1/infer", body)
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    reply = json.loads(raw)
    assert reply["id"] == "j" and reply["outputs"] == [
        {"name": "text_output", "datatype": "BYTES", "shape": [1], "data": ["This is a test."]}
    ]


def test_embeddings_over_both_protocols(
    grpc_client: tgrpc.InferenceServerClient, http_client: thttp.InferenceServerClient, server: Server
) -> None:
    status, _, raw = post(server, "/v3/embeddings", {"model": "minilm", "input": SENTENCES})
    assert status == 200
    reference = np.array([d["embedding"] for d in json.loads(raw)["data"]], dtype=np.float32)
    for module, client in ((tgrpc, grpc_client), (thttp, http_client)):
        tensor = module.InferInput("text_input", [3], "BYTES")
        tensor.set_data_from_numpy(np.array([s.encode() for s in SENTENCES], dtype=object))
        got = client.infer("minilm", [tensor]).as_numpy("embeddings")
        assert got.dtype == np.float32 and got.shape == (3, 384)
        assert np.allclose(got, reference, atol=1e-6)


# -- errors ----------------------------------------------------------------------------------


def grpc_status(call: Any) -> tuple[str, str]:
    with pytest.raises(InferenceServerException) as caught:
        call()
    return caught.value.status(), caught.value.message()


def test_grpc_errors(grpc_client: tgrpc.InferenceServerClient) -> None:
    good = [text_input(tgrpc, "Say this is a test")]
    assert grpc_status(lambda: grpc_client.infer("nope", good)) == ("StatusCode.NOT_FOUND", "model 'nope' not found")
    wrong_name = tgrpc.InferInput("prompt", [1], "BYTES")
    wrong_name.set_data_from_numpy(np.array([b"hi"], dtype=object))
    numbers = tgrpc.InferInput("text_input", [2], "FP32")
    numbers.set_data_from_numpy(np.array([1, 2], dtype=np.float32))
    two = tgrpc.InferInput("text_input", [2], "BYTES")
    two.set_data_from_numpy(np.array([b"a", b"b"], dtype=object))
    cases = [
        ([wrong_name], {}, "expected exactly one input, 'text_input'"),
        ([numbers], {}, "must be BYTES"),
        ([two], {}, "exactly one element"),
        ([text_input(tgrpc, "{}")], {}, "needs 'messages' (chat) or 'prompt'"),
        ([text_input(tgrpc, b"\xff\xfe")], {}, "not valid UTF-8"),
        (good, {"max_tokens": -1}, "max_tokens"),
        (good, {"suffix": "x"}, "suffix"),  # unknown fields are ignored (issue 19); this one the engine cannot do
    ]
    for inputs, parameters, says in cases:
        status, message = grpc_status(lambda inputs=inputs, parameters=parameters: grpc_client.infer("tiny", inputs, parameters=parameters))
        assert status == "StatusCode.INVALID_ARGUMENT" and says in message, (says, message)
    unknown_output = [tgrpc.InferRequestedOutput("logits")]
    status, message = grpc_status(lambda: grpc_client.infer("tiny", good, outputs=unknown_output))
    assert status == "StatusCode.INVALID_ARGUMENT" and "no output 'logits'" in message
    status, message = grpc_status(lambda: grpc_client.infer("rerank", good))
    assert status == "StatusCode.INVALID_ARGUMENT" and "not supported for rerank" in message


def test_grpc_stream_errors_keep_the_stream(grpc_client: tgrpc.InferenceServerClient) -> None:
    results: queue.Queue[tuple[Any, Any]] = queue.Queue()
    grpc_client.start_stream(callback=lambda result, error: results.put((result, error)))
    try:
        grpc_client.async_stream_infer("nope", [text_input(tgrpc, "Say this is a test")], request_id="bad")
        result, error = results.get(timeout=60)
        assert result is None and "model 'nope' not found" in str(error)
        grpc_client.async_stream_infer("tiny", [text_input(tgrpc, "Say this is a test")], request_id="good")
        pieces = []
        while True:
            result, error = results.get(timeout=60)
            assert error is None, error
            pieces += texts(result)
            if result.get_response().parameters["triton_final_response"].bool_param:
                break
        assert "".join(pieces) == TINY_PROMPTS["Say this is a test"]
    finally:
        grpc_client.stop_stream()


def test_rest_errors(server: Server, http_client: thttp.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException) as caught:
        http_client.infer("nope", [text_input(thttp, "hi")])
    assert caught.value.status() == "404" and caught.value.message() == "model 'nope' not found"
    with pytest.raises(InferenceServerException) as caught:
        http_client.infer("tiny", [text_input(thttp, "hi")], parameters={"n": "many"})
    assert caught.value.status() == "400"
    assert "not valid JSON" in kserve_error(*post(server, "/v2/models/tiny/infer", b"{nope")[::2], 400)
    assert "'inputs'" in kserve_error(*post(server, "/v2/models/tiny/infer", {"inputs": []})[::2], 400)
    header = b'{"inputs": [{"name": "text_input", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 99}}]}'
    status, _, raw = post(
        server, "/v2/models/tiny/infer", header + b"\x02\x00\x00\x00hi", {"Inference-Header-Content-Length": str(len(header))}
    )
    assert "binary_data_size 99" in kserve_error(status, raw, 400)
    status, _, raw = post(server, "/v2/models/tiny/infer", b"{}", {"Inference-Header-Content-Length": "7"})
    assert "Inference-Header-Content-Length" in kserve_error(status, raw, 400)


# -- API key ---------------------------------------------------------------------------------


def test_api_key_and_tls_on_both_protocols(secured: tuple[Server, Path]) -> None:
    server, cert = secured
    bearer = {"authorization": f"Bearer {KEY}"}
    client = tgrpc.InferenceServerClient(server.grpc_address, ssl=True, root_certificates=str(cert))
    try:
        for call in (
            lambda: client.infer("tiny", [text_input(tgrpc, "Say this is a test")]),
            lambda: client.get_model_metadata("tiny"),
            lambda: client.get_server_metadata(),
            lambda: client.infer("tiny", [text_input(tgrpc, "Say this is a test")], headers={"authorization": "Bearer wrong"}),
        ):
            assert grpc_status(call)[0] == "StatusCode.UNAUTHENTICATED"
        assert client.is_server_live() and client.is_server_ready()  # they mirror the open /v2/health/ paths
        result = client.infer("tiny", [text_input(tgrpc, "Say this is a test")], headers=bearer)
        assert texts(result) == [TINY_PROMPTS["Say this is a test"]]
        results: queue.Queue[tuple[Any, Any]] = queue.Queue()
        client.start_stream(callback=lambda result, error: results.put((result, error)))
        _, error = results.get(timeout=60)  # refused as soon as the stream opens
        assert error is not None and error.status() == "StatusCode.UNAUTHENTICATED"
        client.stop_stream()
    finally:
        client.close()
    credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    with grpc.secure_channel(server.grpc_address, credentials) as channel:  # the health service stays open
        response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert response.status == health_pb2.HealthCheckResponse.SERVING
    with grpc.insecure_channel(server.grpc_address) as channel:  # plain text is refused on a TLS port
        with pytest.raises(grpc.RpcError) as caught:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=30)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert get(server, "/v2/models/tiny", cert=cert)[0] == 401
    assert get(server, "/v2", cert=cert)[0] == 401
    assert get(server, "/v2/models/tiny", {"Authorization": f"Bearer {KEY}"}, cert=cert)[0] == 200
    assert get(server, "/v2/health/ready", cert=cert)[0] == 200
    tls = {"ssl": True, "ssl_options": {"ca_certs": str(cert)}, "ssl_context_factory": gevent.ssl.create_default_context}
    with thttp.InferenceServerClient(f"127.0.0.1:{server.port}", **tls) as rest:
        with pytest.raises(InferenceServerException) as refused:
            rest.infer("tiny", [text_input(thttp, "Say this is a test")])
        assert refused.value.status() == "401"
        result = rest.infer("tiny", [text_input(thttp, "Say this is a test")], headers={"Authorization": f"Bearer {KEY}"})
        assert texts(result) == [TINY_PROMPTS["Say this is a test"]]

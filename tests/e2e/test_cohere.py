"""Cohere's rerank API through the `cohere` SDK (cohere.Client: v1, cohere.ClientV2: v2) on the
toy cross-encoder, with an API key and metrics on: its exact ranking, Cohere's envelope and
errors, the key, the per-route metric label; raw HTTP for what the SDK does not send."""

from __future__ import annotations

import http.client
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cohere
import pytest

from tests.helpers.http import post
from tests.helpers.server import Server, start_server
from tests.models import RERANK_QUERIES

KEY = "sk-cohere-test"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def server(tiny_reranker_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    key_file = tmp_path_factory.mktemp("cohere") / "key.txt"
    key_file.write_text(KEY + "\n")
    srv = start_server(
        "--model_path", str(tiny_reranker_dir), "--model_name", "rr", "--task", "rerank",
        "--api_key_file", str(key_file), "--metrics_enable",
    )  # fmt: skip
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


@pytest.fixture(scope="module")
def v1(server: Server) -> Iterator[cohere.Client]:
    with cohere.Client(base_url=server.base_url, api_key=KEY) as client:
        yield client


@pytest.fixture(scope="module")
def v2(server: Server) -> Iterator[cohere.ClientV2]:
    with cohere.ClientV2(base_url=server.base_url, api_key=KEY) as client:
        yield client


def ranking(query: str) -> tuple[int, list[str]]:
    relevant, documents = RERANK_QUERIES[query]
    return documents.index(relevant), documents


@pytest.mark.parametrize("query", sorted(RERANK_QUERIES))
def test_v1_client_ranks_the_relevant_document_first(v1: cohere.Client, query: str) -> None:
    best, documents = ranking(query)
    reply = v1.rerank(model="rr", query=query, documents=documents)
    assert reply.results[0].index == best and reply.results[0].document is None
    assert sorted(r.index for r in reply.results) == [0, 1, 2]
    scores = [r.relevance_score for r in reply.results]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    assert reply.id and reply.meta is not None and reply.meta.api_version is not None
    assert reply.meta.api_version.version == "1" and reply.meta.billed_units is not None
    assert reply.meta.billed_units.search_units == 1


@pytest.mark.parametrize("query", sorted(RERANK_QUERIES))
def test_v2_client_ranks_the_relevant_document_first(v2: cohere.ClientV2, query: str) -> None:
    best, documents = ranking(query)
    reply = v2.rerank(model="rr", query=query, documents=documents, top_n=2, max_tokens_per_doc=512)
    assert [r.index for r in reply.results][0] == best and len(reply.results) == 2
    assert reply.meta is not None and reply.meta.api_version is not None and reply.meta.api_version.version == "2"


def test_v1_documents_as_objects_come_back(v1: cohere.Client) -> None:
    query = "Who wrote Hamlet?"
    best, documents = ranking(query)
    reply = v1.rerank(model="rr", query=query, documents=[{"text": d} for d in documents], top_n=1, return_documents=True)
    assert len(reply.results) == 1 and reply.results[0].index == best
    assert reply.results[0].document is not None and reply.results[0].document.text == documents[best]
    plain = v1.rerank(model="rr", query=query, documents=documents, return_documents=True, max_chunks_per_doc=4)
    assert [r.document.text for r in plain.results if r.document] == [documents[r.index] for r in plain.results]


def test_ovms_base_url_under_v3(server: Server) -> None:
    """OVMS documents `cohere.Client(base_url=".../v3")`: the SDK then posts /v3/v1/rerank."""
    query = "How do plants make food?"
    best, documents = ranking(query)
    with cohere.Client(base_url=server.base_url + "/v3", api_key=KEY) as client:
        assert client.rerank(model="rr", query=query, documents=documents).results[0].index == best
    with cohere.ClientV2(base_url=server.base_url + "/v3", api_key=KEY) as client:
        assert client.rerank(model="rr", query=query, documents=documents).results[0].index == best


def test_errors_in_cohere_shape_through_the_sdk(v2: cohere.ClientV2, v1: cohere.Client) -> None:
    with pytest.raises(cohere.NotFoundError) as unknown:
        v2.rerank(model="nope", query="q", documents=["a"])
    assert set(unknown.value.body) == {"message"} and "nope" in unknown.value.body["message"]
    with pytest.raises(cohere.BadRequestError) as empty:
        v1.rerank(model="rr", query="q", documents=[])
    assert "documents" in empty.value.body["message"]
    with pytest.raises(cohere.BadRequestError):
        v1.rerank(model="rr", query="q", documents=[{"title": "t", "text": "a"}], rank_fields=["title"])


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v2/rerank", {"query": "q", "documents": ["a"]}, 400),  # v2 requires model
        ("/v2/rerank", {"model": "rr", "query": "q", "documents": ["a"], "top_n": 0}, 400),
        ("/v2/rerank", {"model": "rr", "query": "q", "documents": ["a"], "max_tokens_per_doc": -1}, 400),
        ("/v1/rerank", {"model": "rr", "query": "q", "documents": ["a"], "frobnicate": 1}, 400),
        ("/v1/rerank", {"model": "rr", "query": "q", "documents": ["word " * 600]}, 400),  # over the model's 512 tokens
        ("/v1/rerank", {"model": "rr", "query": 5, "documents": ["a"]}, 400),
        ("/v1/rerank", {"model": "rr", "query": "q", "documents": ["a"], "top_n": "all"}, 400),
        ("/v2/rerank", b"[1, 2]", 400),
        ("/v2/rerank", b"{not json", 400),
        ("/v2/rerank", b'{"model": "rr", "query": "q", "documents": ["' + b"a" * (20 * 1024 * 1024) + b'"]}', 413),
    ],
)
def test_hostile_bodies_get_cohere_errors(server: Server, path: str, body: Any, status: int) -> None:
    got, headers, reply = post(server, path, body, AUTH)
    assert got == status, reply[:300]
    assert headers["Content-Type"].startswith("application/json")
    error = json.loads(reply)
    assert set(error) == {"message"} and error["message"], error


def test_the_api_key_is_required_and_refused_in_cohere_shape(server: Server) -> None:
    query = "Who wrote Hamlet?"
    _, documents = ranking(query)
    with cohere.ClientV2(base_url=server.base_url, api_key="wrong") as v2, pytest.raises(cohere.UnauthorizedError) as refused:
        v2.rerank(model="rr", query=query, documents=documents)
    assert refused.value.status_code == 401 and set(refused.value.body) == {"message"}, refused.value.body
    with cohere.Client(base_url=server.base_url + "/v3", api_key="wrong") as v1, pytest.raises(cohere.UnauthorizedError) as refused:
        v1.rerank(model="rr", query=query, documents=documents)
    assert refused.value.status_code == 401 and "API key" in refused.value.body["message"], refused.value.body
    for path in ("/v1/rerank", "/v2/rerank", "/v3/v1/rerank", "/v3/v2/rerank"):
        status, _, reply = post(server, path, {"model": "rr", "query": query, "documents": documents})
        assert status == 401 and set(json.loads(reply)) == {"message"}, reply


def raw(server: Server, method: str, path: str, body: bytes = b"", content_type: str = "application/json") -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request(method, path, body=body or None, headers={**AUTH, "Content-Type": content_type})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("method", "path", "content_type", "status"),
    [
        ("GET", "/v2/rerank", "application/json", 405),  # /v2 is KServe's elsewhere: not its shape here
        ("GET", "/v3/v1/rerank", "application/json", 405),
        ("POST", "/v1/rerank/more", "application/json", 404),
        ("POST", "/v2/rerank", "text/plain", 415),
        ("POST", "/v3/v2/rerank", "text/plain", 415),
    ],
)
def test_the_middlewares_refusals_in_cohere_shape(server: Server, method: str, path: str, content_type: str, status: int) -> None:
    got, error = raw(server, method, path, b'{"model": "rr"}' if method == "POST" else b"", content_type)
    assert got == status and set(error) == {"message"} and error["message"], error


def test_metrics_label_each_route(server: Server, v1: cohere.Client, v2: cohere.ClientV2) -> None:
    v1.rerank(model="rr", query="Who wrote Hamlet?", documents=["a"])
    v2.rerank(model="rr", query="Who wrote Hamlet?", documents=["a"])
    request = urllib.request.Request(server.base_url + "/metrics", headers=AUTH)
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    for route in ("/v1/rerank", "/v2/rerank"):
        assert f'ovserve_http_requests_total{{endpoint="{route}",model="rr",status="200"}}' in text, route

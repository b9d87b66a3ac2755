"""/v3/rerank on a tiny cross-encoder trained locally (a toy: it checks the API and the
ranking, not quality), in Cohere's shape; OVMS's rerank graph serves unchanged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.http import assert_openai_error, post
from tests.helpers.server import Server, start_server
from tests.models import RERANK_QUERIES


@pytest.fixture(scope="module")
def server(tiny_reranker_dir: Path) -> Iterator[Server]:
    srv = start_server("--model_path", str(tiny_reranker_dir), "--model_name", "rr", "--task", "rerank")
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


def rerank(server: Server, **body: Any) -> dict[str, Any]:
    status, _, reply = post(server, "/v3/rerank", {"model": "rr", **body})
    assert status == 200, reply
    return json.loads(reply)  # type: ignore[no-any-return]


@pytest.mark.parametrize("query", sorted(RERANK_QUERIES))
def test_relevant_document_first(server: Server, query: str) -> None:
    relevant, documents = RERANK_QUERIES[query]
    reply = rerank(server, query=query, documents=documents)
    results = reply["results"]
    assert [r["index"] for r in results][0] == documents.index(relevant)
    scores = [r["relevance_score"] for r in results]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    assert sorted(r["index"] for r in results) == list(range(len(documents)))


def test_top_n_return_documents_and_objects(server: Server) -> None:
    query = "Who wrote Hamlet?"
    relevant, documents = RERANK_QUERIES[query]
    reply = rerank(server, query=query, documents=[{"text": d} for d in documents], top_n=1, return_documents=True)
    assert len(reply["results"]) == 1 and reply["results"][0]["document"] == {"text": relevant}
    plain = rerank(server, query=query, documents=documents, top_n=2, return_documents=True)
    assert [r["document"]["text"] for r in plain["results"]][0] == relevant and len(plain["results"]) == 2


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"query": "q", "documents": []}, "documents"),
        ({"query": "", "documents": ["a"]}, "query"),
        ({"query": "q", "documents": ["a"], "top_n": 0}, "top_n"),
        ({"query": "q", "documents": ["word " * 600]}, "documents"),
        ({"documents": ["a"]}, "query"),
    ],
)
def test_bad_rerank_requests(server: Server, body: dict[str, Any], param: str) -> None:
    status, _, reply = post(server, "/v3/rerank", {"model": "rr", **body})
    assert_openai_error(status, reply, 400, param)


def test_ovms_rerank_graph_serves_unchanged(tiny_reranker_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "rr"
    folder.mkdir()
    for item in tiny_reranker_dir.iterdir():
        (folder / item.name).symlink_to(item)
    graph = Path(__file__).parents[1] / "graphs" / "data" / "ovms_rerank_graph.pbtxt"
    (folder / "graph.pbtxt").write_text(graph.read_text())
    (tmp_path / "config.json").write_text(json.dumps({"mediapipe_config_list": [{"name": "rr", "base_path": "rr"}]}))
    srv = start_server("--config_path", str(tmp_path / "config.json"), "--file_system_poll_wait_seconds", "0")
    try:
        query = "What is the capital of France?"
        relevant, documents = RERANK_QUERIES[query]
        assert rerank(srv, query=query, documents=documents)["results"][0]["index"] == documents.index(relevant)
    finally:
        assert srv.stop() == 0


def test_concurrent_rerank_requests(server: Server) -> None:
    from concurrent.futures import ThreadPoolExecutor

    query = "How do plants make food?"
    relevant, documents = RERANK_QUERIES[query]
    with ThreadPoolExecutor(max_workers=8) as pool:
        firsts = list(pool.map(lambda _: rerank(server, query=query, documents=documents)["results"][0]["index"], range(16)))
    assert firsts == [documents.index(relevant)] * 16

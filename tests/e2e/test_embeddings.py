"""/v3/embeddings on the real all-MiniLM-L6-v2 (exported locally), through the openai SDK and
raw HTTP: real semantics, agreement with the torch reference, OpenAI's shapes, clear 400s."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest

from tests.helpers.http import assert_openai_error, post
from tests.helpers.server import Server, start_server
from tests.models.minilm import source_model_dir, torch_embed

SENTENCES = ["A man is playing a guitar.", "Someone plays an instrument.", "The stock market fell today."]


@pytest.fixture(scope="module")
def server(minilm_model_dir: Path) -> Iterator[Server]:
    srv = start_server("--model_path", str(minilm_model_dir), "--model_name", "minilm", "--task", "embeddings")
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


def vectors(client: openai.OpenAI, inputs: list[str]) -> np.ndarray:
    reply = client.embeddings.create(model="minilm", input=inputs, encoding_format="float")
    return np.array([d.embedding for d in sorted(reply.data, key=lambda d: d.index)])


def test_semantics_and_agreement_with_the_reference(client: openai.OpenAI) -> None:
    got = vectors(client, SENTENCES)
    assert got.shape == (3, 384)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)  # normalized
    paraphrase, unrelated = float(got[0] @ got[1]), float(got[0] @ got[2])
    assert paraphrase > 0.4 and unrelated < 0.15
    reference = np.array(torch_embed(source_model_dir(), SENTENCES))
    cosines = (got * reference).sum(axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(reference, axis=1))
    assert cosines.min() > 1 - 1e-3  # same as sentence-transformers


def test_shapes_usage_and_input_forms(client: openai.OpenAI, server: Server) -> None:
    reply = client.embeddings.create(model="minilm", input="hello world")
    assert reply.object == "list" and reply.model == "minilm" and len(reply.data) == 1
    assert reply.data[0].object == "embedding" and reply.data[0].index == 0
    assert reply.usage.prompt_tokens == reply.usage.total_tokens == 4  # [CLS] hello world [SEP]
    status, _, body = post(server, "/v3/tokenize", {"model": "minilm", "prompt": "hello world"})
    # token ids in, same vector out
    ids = [101, 7592, 2088, 102]
    by_ids = client.embeddings.create(model="minilm", input=ids)
    assert np.allclose(by_ids.data[0].embedding, reply.data[0].embedding, atol=1e-5)
    twice = client.embeddings.create(model="minilm", input=[ids, ids])
    assert len(twice.data) == 2
    status, _, raw = post(server, "/v1/embeddings", {"model": "minilm", "input": ["hello world"], "encoding_format": "base64"})
    assert status == 200
    decoded = np.frombuffer(base64.b64decode(json.loads(raw)["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(decoded, reply.data[0].embedding, atol=1e-6)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "minilm", "input": "word " * 400}, "input"),
        ({"model": "minilm", "input": []}, "input"),
        ({"model": "minilm", "input": ""}, "input"),
        ({"model": "minilm", "input": "x", "dimensions": 128}, "dimensions"),
        ({"model": "minilm", "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "minilm", "input": [10**7]}, "input"),
        ({"model": "minilm", "input": "x", "colour": 1}, "colour"),
    ],
)
def test_bad_embeddings_requests(server: Server, body: dict[str, object], param: str) -> None:
    status, _, reply = post(server, "/v3/embeddings", body)
    assert_openai_error(status, reply, 400, param)


def test_wrong_endpoint_for_the_model(server: Server) -> None:
    status, _, reply = post(server, "/v3/chat/completions", {"model": "minilm", "messages": [{"role": "user", "content": "hi"}]})
    assert_openai_error(status, reply, 400, "model")


def test_ovms_embeddings_graph_serves_unchanged(minilm_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "emb"
    folder.mkdir()
    for item in minilm_model_dir.iterdir():
        (folder / item.name).symlink_to(item)
    graph = Path(__file__).parents[1] / "graphs" / "data" / "ovms_embeddings_graph.pbtxt"
    (folder / "graph.pbtxt").write_text(graph.read_text())
    (tmp_path / "config.json").write_text(json.dumps({"model_config_list": [{"config": {"name": "emb", "base_path": "emb"}}]}))
    srv = start_server("--config_path", str(tmp_path / "config.json"), "--file_system_poll_wait_seconds", "0")
    try:
        with openai.OpenAI(base_url=srv.base_url + "/v3", api_key="x", max_retries=0) as sdk:
            got = np.array([d.embedding for d in sdk.embeddings.create(model="emb", input=SENTENCES[:2]).data])
        assert got.shape == (2, 384) and float(got[0] @ got[1]) > 0.4
    finally:
        assert srv.stop() == 0


def test_concurrent_requests_all_succeed(client: openai.OpenAI) -> None:
    """Requests in flight together each use their own infer request (no "Infer Request is busy")."""
    from concurrent.futures import ThreadPoolExecutor

    expected = vectors(client, SENTENCES)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: vectors(client, SENTENCES), range(16)))
    assert all(np.allclose(r, expected, atol=1e-5) for r in results)

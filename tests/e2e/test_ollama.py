"""Ollama's native API with the `ollama` Python client: chat (unary and streamed), generate, embed,
list, show, ps, version, `format`, the errors, the API key, and the same routes on --ollama_port."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest

from tests.helpers.servables import three_servables
from tests.helpers.server import Server, start_server
from tests.models import TINY_COMPLETIONS, TINY_JSON_ANSWER, TINY_JSON_PROMPT, TINY_PROMPTS

KEY = "ollama-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
PROMPT = "What is the capital of France?"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def ollama_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def server(
    tiny_model_dir: Path, minilm_model_dir: Path, tiny_reranker_dir: Path, tmp_path_factory: pytest.TempPathFactory, ollama_port: int
) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("ollama")
    config = three_servables(root, tiny_model_dir, minilm_model_dir, tiny_reranker_dir)
    (root / "key").write_text(KEY)
    srv = start_server(
        "--config_path", str(config), "--ollama_port", str(ollama_port), "--api_key_file", str(root / "key"), "--metrics_enable"
    )  # fmt: skip
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[ollama.Client]:
    with ollama.Client(host=server.base_url, headers=AUTH) as c:
        yield c


@pytest.fixture(scope="module")
def ollama_client(server: Server, ollama_port: int) -> Iterator[ollama.Client]:
    """The client as Ollama's users run it: on port 11434's stand-in."""
    with ollama.Client(host=f"http://127.0.0.1:{ollama_port}", headers=AUTH) as c:
        yield c


def test_chat_exact_answer(client: ollama.Client) -> None:
    response = client.chat(model="tiny", messages=[{"role": "user", "content": PROMPT}], stream=False)
    assert response.message.role == "assistant"
    assert response.message.content == TINY_PROMPTS[PROMPT]
    assert response.done and response.done_reason == "stop"
    assert response.eval_count and response.prompt_eval_count and response.model == "tiny"
    assert response.total_duration and response.eval_duration is not None
    assert response.total_duration >= response.eval_duration


def test_chat_streams_ndjson(client: ollama.Client) -> None:
    parts = list(client.chat(model="tiny", messages=[{"role": "user", "content": "Tell me a story."}], stream=True))
    assert len(parts) > 2 and all(not p.done for p in parts[:-1]) and parts[-1].done
    assert "".join(p.message.content or "" for p in parts) == TINY_PROMPTS["Tell me a story."]
    assert parts[-1].done_reason == "stop" and parts[-1].eval_count


def test_num_predict_stops_at_length(client: ollama.Client) -> None:
    response = client.chat(model="tiny", messages=[{"role": "user", "content": "Tell me a story."}], options={"num_predict": 3})
    assert response.done_reason == "length" and response.eval_count == 3
    assert TINY_PROMPTS["Tell me a story."].startswith(response.message.content or "")


def test_generate_templated_and_raw(client: ollama.Client) -> None:
    assert client.generate(model="tiny", prompt=PROMPT).response == TINY_PROMPTS[PROMPT]
    prompt, continuation = next(iter(TINY_COMPLETIONS.items()))
    raw = client.generate(model="tiny", prompt=prompt, raw=True, options={"num_predict": 200})
    assert raw.response and continuation.startswith(raw.response)
    streamed = list(client.generate(model="tiny", prompt=PROMPT, stream=True))
    assert "".join(p.response or "" for p in streamed) == TINY_PROMPTS[PROMPT] and streamed[-1].done


def test_generate_without_prompt_loads(client: ollama.Client) -> None:
    response = client.generate(model="tiny")
    assert response.done and response.done_reason == "load" and response.response == ""


def test_format_json(client: ollama.Client) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "color": {"type": "string"}},
        "required": ["name", "age", "color"],
    }
    answer = client.chat(model="tiny", messages=[{"role": "user", "content": TINY_JSON_PROMPT}], format=schema, options={"num_predict": 60})
    assert json.loads(answer.message.content or "") == json.loads(TINY_JSON_ANSWER)
    loose = client.generate(model="tiny", prompt=TINY_JSON_PROMPT, format="json", options={"num_predict": 60})
    assert isinstance(json.loads(loose.response or ""), dict)


def test_embed(client: ollama.Client) -> None:
    response = client.embed(model="minilm", input=["The cat sat.", "A dog ran."])
    assert len(response.embeddings) == 2 and len(response.embeddings[0]) == 384
    assert response.prompt_eval_count and response.model == "minilm"
    old = client.embeddings(model="minilm", prompt="The cat sat.")
    assert old.embedding == pytest.approx(response.embeddings[0], abs=1e-5)


def test_list_show_ps(client: ollama.Client) -> None:
    names = {m.model for m in client.list().models}
    assert {"tiny", "minilm"} <= names and "rerank" not in names  # Ollama lists no rerankers
    shown = client.show("tiny")
    assert shown.capabilities and "completion" in shown.capabilities and shown.template
    assert shown.details and shown.details.format == "openvino"
    assert client.show("minilm").capabilities == ["embedding"]
    running = {m.model: m for m in client.ps().models}
    assert "tiny" in running and running["tiny"].context_length


def test_version_and_root(server: Server, ollama_port: int) -> None:
    for base in (server.base_url, f"http://127.0.0.1:{ollama_port}"):
        assert httpx.get(f"{base}/api/version", headers=AUTH).json()["version"]
        root = httpx.get(f"{base}/", headers=AUTH)
        assert root.status_code == 200 and root.text == "Ollama is running"


def test_pull_of_a_served_model_succeeds_and_others_are_refused(client: ollama.Client) -> None:
    lines = list(client.pull("tiny", stream=True))
    assert lines[-1].status == "success" and any(line.digest and line.total == line.completed for line in lines)
    with pytest.raises(ollama.ResponseError) as refused:
        client.pull("llama3.2")
    assert refused.value.status_code == 404 and "does not pull from the Ollama registry" in refused.value.error


def test_second_port_serves_the_same_api(ollama_client: ollama.Client) -> None:
    response = ollama_client.chat(model="tiny", messages=[{"role": "user", "content": PROMPT}])
    assert response.message.content == TINY_PROMPTS[PROMPT]
    assert "tiny" in {m.model for m in ollama_client.list().models}


def test_errors_in_ollama_shape(client: ollama.Client, server: Server) -> None:
    with pytest.raises(ollama.ResponseError) as missing:
        client.chat(model="nope", messages=[{"role": "user", "content": "hi"}])
    assert missing.value.status_code == 404 and "nope" in missing.value.error
    with pytest.raises(ollama.ResponseError) as bad:
        client.chat(model="tiny", messages=[{"role": "user", "content": "hi"}], options={"temperature": -3})
    assert bad.value.status_code == 400 and isinstance(bad.value.error, str)
    with pytest.raises(ollama.ResponseError) as streamed_bad:  # refused before the first line: the status is kept
        list(client.chat(model="tiny", messages=[{"role": "user", "content": "hi"}], options={"top_p": 7}, stream=True))
    assert streamed_bad.value.status_code == 400
    with pytest.raises(ollama.ResponseError) as no_embed:
        client.embed(model="tiny", input="hi")
    assert no_embed.value.status_code == 400
    raw = httpx.post(f"{server.base_url}/api/chat", content=b"{not json", headers={**AUTH, "Content-Type": "application/json"})
    assert raw.status_code == 400 and isinstance(raw.json()["error"], str)


def test_api_key_is_required_on_both_ports(server: Server, ollama_port: int) -> None:
    for base in (server.base_url, f"http://127.0.0.1:{ollama_port}"):
        assert httpx.get(f"{base}/api/tags").status_code == 401
        refused = httpx.post(f"{base}/api/chat", json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}]})
        assert refused.status_code == 401 and isinstance(refused.json()["error"], str)  # Ollama's shape
    with pytest.raises(ollama.ResponseError) as keyless, ollama.Client(host=server.base_url) as keyless_client:
        keyless_client.list()
    assert keyless.value.status_code == 401


DEEP = b"[" * 100_000 + b"]" * 100_000
HUGE = 2**70


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/chat", b"garbage", 400),
        ("/api/chat", b"[1]", 400),
        ("/api/chat", DEEP, 400),
        ("/api/chat", {"messages": [{"role": "user", "content": "hi"}]}, 400),
        ("/api/chat", {"model": "tiny", "messages": "hi"}, 400),
        ("/api/chat", {"model": "tiny", "messages": [5]}, 400),
        ("/api/chat", {"model": "tiny", "messages": [{"role": "user", "content": {"a": 1}}]}, 400),
        ("/api/chat", {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "options": {"num_predict": HUGE}}, 400),
        ("/api/chat", {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "options": {"seed": "x"}}, 400),
        ("/api/chat", {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "format": 7}, 400),
        ("/api/chat", {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "think": "max"}, 400),
        ("/api/chat", {"model": "tiny", "messages": [{"role": "user", "content": "hi", "images": ["!!"]}]}, 400),
        ("/api/chat", {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}, 400),
        ("/api/generate", {"model": "tiny", "prompt": 5}, 400),
        ("/api/generate", {"model": "tiny", "prompt": "hi", "suffix": "end"}, 400),
        ("/api/generate", {"model": "tiny", "prompt": "hi", "context": [1, 2]}, 400),
        ("/api/generate", {"model": "x" * 100_000, "prompt": "hi"}, 404),
        ("/api/embed", {"model": "minilm", "input": [1.5]}, 400),
        ("/api/embed", {"model": "minilm"}, 400),
        ("/api/embed", {"model": "minilm", "input": "a", "dimensions": -1}, 400),
        ("/api/embeddings", {"model": "minilm", "prompt": ["a"]}, 400),
        ("/api/show", {"model": 5}, 400),
        ("/api/show", {"model": "nope"}, 404),
        ("/api/pull", {}, 400),
    ],
)
def test_hostile_bodies_get_ollama_errors(server: Server, path: str, body: Any, status: int) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    got = httpx.post(f"{server.base_url}{path}", content=content, headers={**AUTH, "Content-Type": "application/json"}, timeout=60)
    assert got.status_code == status, got.text
    error = got.json()
    assert set(error) == {"error"} and isinstance(error["error"], str) and error["error"], error


def test_metrics_label_each_route(server: Server, client: ollama.Client) -> None:
    client.chat(model="tiny", messages=[{"role": "user", "content": PROMPT}])
    client.embed(model="minilm", input="The cat sat.")
    text = httpx.get(f"{server.base_url}/metrics", headers=AUTH).text
    assert 'ovserve_http_requests_total{endpoint="/api/chat",model="tiny",status="200"}' in text
    assert 'ovserve_http_requests_total{endpoint="/api/embed",model="minilm",status="200"}' in text
    assert 'ovserve_request_duration_seconds_count{endpoint="/api/chat",model="tiny"}' in text  # timed like chat

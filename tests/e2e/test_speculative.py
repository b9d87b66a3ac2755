"""Speculative decoding (a draft model) and prompt lookup on a real server: greedy answers are
exactly the target model's, unary and streaming, whatever the per-request knobs; requests the
servable cannot serve get clear 400s (bad node options: tests/calculators/llm/test_speculative.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.http import CHAT, assert_openai_error, chat, chat_stream, post, user
from tests.helpers.servables import llm_graph, write_config
from tests.helpers.server import Server, start_server
from tests.models import TINY_COMPLETIONS, TINY_PROMPTS, build_tiny_draft_model

COMPLETIONS = "/v3/completions"
# Small KV caches: three engines (one with a draft model) share this machine's memory.
BLOCKS = "num_kv_blocks: 64"


@pytest.fixture(scope="module")
def draft_model_dir() -> Path:
    return build_tiny_draft_model()


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, draft_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("speculative")
    graphs = {
        "plain": llm_graph(tiny_model_dir, BLOCKS),
        "draft": llm_graph(
            tiny_model_dir, f'{BLOCKS}\n      draft_models_path: {json.dumps(str(draft_model_dir))}\n      draft_device: "CPU"'
        ),
        "lookup": llm_graph(tiny_model_dir, f"{BLOCKS}\n      plugin_config: '{{\"prompt_lookup\": true}}'\n      max_ngram_size: 2"),
    }
    srv = start_server("--config_path", str(write_config(root, graphs)))
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


KNOBS = {
    "draft": [
        {},
        {"num_assistant_tokens": 1},
        {"num_assistant_tokens": 3},
        {"num_assistant_tokens": 8},
        {"assistant_confidence_threshold": 0.3},
    ],
    "lookup": [{}, {"num_assistant_tokens": 2}, {"num_assistant_tokens": 6, "max_ngram_size": 4}, {"max_ngram_size": 1}],
}
CASES = [(model, knobs) for model, variants in KNOBS.items() for knobs in variants]


@pytest.mark.parametrize(("model", "knobs"), CASES, ids=[f"{m}-{json.dumps(k)}" for m, k in CASES])
def test_greedy_answers_are_the_target_models(server: Server, model: str, knobs: dict[str, Any]) -> None:
    for prompt, answer in TINY_PROMPTS.items():
        assert chat(server, model, prompt, **knobs) == answer, prompt
        assert chat_stream(server, model, prompt, **knobs) == answer, prompt


@pytest.mark.parametrize("model", ["draft", "lookup"])
def test_completions_and_plain_servable_agree(server: Server, model: str) -> None:
    for prompt, continuation in TINY_COMPLETIONS.items():
        for name in ("plain", model):
            status, _headers, body = post(server, COMPLETIONS, {"model": name, "prompt": prompt, "max_tokens": 20})
            assert status == 200, body
            assert json.loads(body)["choices"][0]["text"] == continuation


def test_sampling_runs_with_a_draft_model(server: Server) -> None:
    status, _headers, body = post(server, CHAT, {"model": "draft", "messages": user("Count to five."), "temperature": 0.7, "seed": 1})
    assert status == 200, body
    assert json.loads(body)["choices"][0]["message"]["content"]


def test_concurrent_speculative_requests(server: Server) -> None:
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        futures = {(m, p): pool.submit(chat, server, m, p) for m in ("draft", "lookup") for p in TINY_PROMPTS}
        for (_model, prompt), future in futures.items():
            assert future.result() == TINY_PROMPTS[prompt]


REFUSED = [
    ("plain", {"num_assistant_tokens": 3}, "num_assistant_tokens"),
    ("plain", {"assistant_confidence_threshold": 0.5}, "assistant_confidence_threshold"),
    ("plain", {"max_ngram_size": 3}, "max_ngram_size"),
    ("draft", {"max_ngram_size": 3}, "max_ngram_size"),
    ("draft", {"num_assistant_tokens": 3, "assistant_confidence_threshold": 0.5}, "assistant_confidence_threshold"),
    ("lookup", {"assistant_confidence_threshold": 0.5}, "assistant_confidence_threshold"),
    ("draft", {"n": 2, "temperature": 0.5}, "n"),
    ("lookup", {"best_of": 2}, "best_of"),
    ("draft", {"num_assistant_tokens": 0}, "num_assistant_tokens"),
    ("draft", {"num_assistant_tokens": 10**6}, "num_assistant_tokens"),
    ("draft", {"assistant_confidence_threshold": 1.5}, "assistant_confidence_threshold"),
    ("lookup", {"max_ngram_size": -1}, "max_ngram_size"),
]


@pytest.mark.parametrize(("model", "knobs", "param"), REFUSED, ids=[f"{m}-{json.dumps(k)}" for m, k, _ in REFUSED])
def test_refused_with_a_clear_400(server: Server, model: str, knobs: dict[str, Any], param: str) -> None:
    status, _headers, body = post(server, CHAT, {"model": model, "messages": user("Say this is a test"), **knobs})
    error = assert_openai_error(status, body, 400)
    assert param in (error["param"] or "") or param in error["message"], error
    # streaming requests are refused before the first byte, with the same status
    status, _headers, body = post(server, CHAT, {"model": model, "messages": user("Say this is a test"), "stream": True, **knobs})
    assert_openai_error(status, body, 400)


def test_plain_servable_400_names_what_is_needed(server: Server) -> None:
    status, _headers, body = post(server, COMPLETIONS, {"model": "plain", "prompt": "The quick brown fox", "num_assistant_tokens": 2})
    error = assert_openai_error(status, body, 400, param="num_assistant_tokens")
    assert "draft_models_path" in error["message"] and "prompt_lookup" in error["message"]


@pytest.mark.parametrize(
    "flags",
    [
        ["--draft_models_path", "DRAFT", "--draft_max_num_seqs", "8"],
        ["--plugin_config", '{"prompt_lookup": true}', "--max_ngram_size", "2"],
    ],
    ids=["draft", "prompt-lookup"],
)
def test_single_model_mode_flags(tiny_model_dir: Path, draft_model_dir: Path, flags: list[str]) -> None:
    args = [str(draft_model_dir) if f == "DRAFT" else f for f in flags]
    srv = start_server("--model_path", str(tiny_model_dir), "--model_name", "tiny", "--cache_size", "1", *args)
    try:
        for prompt, answer in TINY_PROMPTS.items():
            assert chat_stream(srv, "tiny", prompt, num_assistant_tokens=3) == answer
    finally:
        assert srv.stop() == 0, "\n".join(srv.output)

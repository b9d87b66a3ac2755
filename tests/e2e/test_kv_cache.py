"""KV-cache options on real servers: a dynamic cache (`cache_size: 0`), u8 / u4 KV precision,
cache eviction (`cache_eviction_config`), and the scheduler's preemptions in /metrics.

Preemption is forced, not hoped for: two stories (178 tokens each, 6 blocks of 32) cannot both fit
in an 8-block cache, and the engine worker is paused while they are submitted, so they surely run
together. genai then preempts one (frees its blocks, recomputes it when the other is done); both
still get their exact answers.
"""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.http import CHAT, post, user
from tests.helpers.metrics import scrape, value
from tests.helpers.processes import paused, run_cli
from tests.helpers.servables import llm_graph, write_config
from tests.helpers.server import Server, start_server, wait_for
from tests.helpers.stats import engine
from tests.models import TINY_PROMPTS

STORY = "Tell me a story."


def chat(server: Server, prompt: str, **extra: object) -> dict[str, object]:
    status, _, body = post(server, CHAT, {"model": "tiny", "messages": user(prompt), **extra})
    assert status == 200, body
    return json.loads(body)  # type: ignore[no-any-return]


def answer(reply: dict[str, object]) -> str:
    return reply["choices"][0]["message"]["content"]  # type: ignore[index, no-any-return]


def config_server(root: Path, graph: str) -> Server:
    return start_server("--config_path", str(write_config(root, {"tiny": graph})), "--metrics_enable")


@pytest.fixture(scope="module")
def dynamic_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    graph = llm_graph(tiny_model_dir).replace("cache_size: 1\n", "cache_size: 0\n")
    assert "cache_size: 0\n" in graph
    server = config_server(tmp_path_factory.mktemp("dynamic-kv"), graph)
    yield server
    assert server.stop() == 0, "\n".join(server.output)


def test_dynamic_cache_grows_on_demand_and_never_preempts(dynamic_server: Server) -> None:
    with concurrent.futures.ThreadPoolExecutor(len(TINY_PROMPTS)) as pool:
        replies = dict(zip(TINY_PROMPTS, pool.map(lambda p: chat(dynamic_server, p), TINY_PROMPTS), strict=True))
    assert {prompt: answer(reply) for prompt, reply in replies.items()} == TINY_PROMPTS
    families = scrape(dynamic_server)
    # genai allocates blocks as requests need them: a few hundred KB here, not cache_size GB
    assert 0 < value(families, "ovserve_kv_cache_size_bytes", model="tiny") < 64 << 20
    assert value(families, "ovserve_engine_preemptions_total", model="tiny") == 0
    assert engine(dynamic_server, "tiny")["preempted"] == 0


@pytest.mark.parametrize("precision", ["u8", "u4"])
def test_kv_cache_precision(tiny_model_dir: Path, tmp_path: Path, precision: str) -> None:
    if precision == "u8":  # the CLI flag (folded into plugin_config, as OVMS)
        server = start_server("--model_path", str(tiny_model_dir), "--model_name", "tiny", "--kv_cache_precision", "u8")
    else:  # plugin_config in a graph
        options = 'plugin_config: \'{"KV_CACHE_PRECISION": "u4"}\''
        server = start_server("--config_path", str(write_config(tmp_path, {"tiny": llm_graph(tiny_model_dir, options)})))
    try:
        for prompt in (STORY, "What is the capital of France?"):
            text = answer(chat(server, prompt))
            if precision == "u8":
                assert text == TINY_PROMPTS[prompt]
            else:  # 4-bit keys and values may change a greedy answer (the tiny model's did not, measured)
                assert text
    finally:
        assert server.stop() == 0, "\n".join(server.output)


def test_cache_eviction_lets_a_long_generation_finish(tiny_model_dir: Path, tmp_path: Path) -> None:
    # each sequence keeps at most 128 tokens of KV: a 300-token generation outgrows that twice over
    eviction = "cache_eviction_config: { start_size: 32 recent_size: 32 max_cache_size: 128 aggregation_mode: NORM_SUM }"
    server = config_server(tmp_path, llm_graph(tiny_model_dir, eviction))
    try:
        reply = chat(server, STORY, max_tokens=300, ignore_eos=True)
        assert reply["usage"]["completion_tokens"] == 300  # type: ignore[index]
        assert reply["choices"][0]["finish_reason"] == "length"  # type: ignore[index]
        # the start of the story was generated before anything was evicted
        assert answer(reply).startswith(TINY_PROMPTS[STORY][:40])
        assert answer(chat(server, "What is the capital of France?")) == TINY_PROMPTS["What is the capital of France?"]
    finally:
        assert server.stop() == 0, "\n".join(server.output)


def test_bad_cache_eviction_config_fails_the_load(tiny_model_dir: Path, tmp_path: Path) -> None:
    eviction = "cache_eviction_config: { start_size: 32 recent_size: 32 max_cache_size: 100 }"
    result = run_cli("--config_path", str(write_config(tmp_path, {"tiny": llm_graph(tiny_model_dir, eviction)})))
    assert result.returncode == 1, result.stderr
    output = result.stdout + result.stderr
    expected = "cache_eviction_config: max_cache_size (100) must be a multiple of the CPU's KV block size (32 tokens)"
    assert any("servable tiny failed to load" in line and expected in line for line in output.splitlines()), output


def test_preemptions_are_counted(tiny_model_dir: Path, tmp_path: Path) -> None:
    server = config_server(tmp_path, llm_graph(tiny_model_dir, "num_kv_blocks: 8"))
    try:
        prompts = [STORY, STORY, "Count to five."]
        worker = engine(server, "tiny")["pid"]
        with concurrent.futures.ThreadPoolExecutor(len(prompts)) as pool:
            with paused(worker):
                futures = [pool.submit(chat, server, p) for p in prompts]
                wait_for(lambda: engine(server, "tiny")["active_requests"] == len(prompts), "every request in the engine")
            assert [answer(f.result()) for f in futures] == [TINY_PROMPTS[p] for p in prompts]
        stats = engine(server, "tiny")
        assert stats["preempted"] >= 1, stats
        assert value(scrape(server), "ovserve_engine_preemptions_total", model="tiny") == stats["preempted"]
    finally:
        assert server.stop() == 0, "\n".join(server.output)

"""Log-likelihoods (completions' `echo` + `logprobs`, what lm-evaluation-harness's loglikelihood
tasks send) on prefix-caching servables (issue 15, item 5), end to end.

One server serves the toy and SmolLM2 twice each: as the stock graph (prefix caching on) and
with `enable_prefix_caching: false`. On the caching servables echo requests run on a second,
non-caching engine started on first use (calculators/llm/scorer.py); their answers must equal the
non-caching servables' (values within 1e-3, tokens, offsets and text identical), also after the
main engine cached the prompt. lm_eval's `local-completions` then runs a multiple-choice task
against the caching SmolLM2 servable.
"""

from __future__ import annotations

import ast
import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from serving.demo import smollm2_gguf
from tests.helpers.files import read_jsonl
from tests.helpers.http import assert_openai_error, post
from tests.helpers.servables import llm_graph, write_config
from tests.helpers.server import ROOT, Server, start_server
from tests.helpers.stats import engine

COMPLETIONS = "/v3/completions"
TASKS_DIR = ROOT / "tests" / "e2e" / "data" / "lm_eval_loglikelihood"
TASK = "ovserve_capitals"
TOLERANCE = 1e-3
TOY_PROMPTS = [
    "The capital of France is",
    "Tell me a story.",
    "Once upon a time there was a tiny model that answered questions",
    "What is 2 + 2? The answer is",
]
REAL_PROMPTS = ["The capital of France is Paris.", "Café 日本語 🙂: the weather today is sunny", "def add(a, b):\n    return a + b"]


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, smollm2_cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    off = "enable_prefix_caching: true"
    cache = f"plugin_config: {json.dumps(json.dumps({'CACHE_DIR': str(smollm2_cache_dir)}))}"
    tiny, smollm2 = llm_graph(tiny_model_dir), llm_graph(smollm2_gguf(), cache)
    assert off in tiny
    graphs = {
        "tiny": tiny,
        "tiny_nocache": tiny.replace(off, "enable_prefix_caching: false"),
        "smollm2": smollm2,
        "smollm2_nocache": smollm2.replace(off, "enable_prefix_caching: false"),
    }
    running = start_server("--config_path", str(write_config(tmp_path_factory.mktemp("loglikelihood"), graphs)))
    yield running
    assert running.stop() == 0, "\n".join(running.output)


def complete(server: Server, model: str, prompt: str | list[int], **extra: Any) -> dict[str, Any]:
    body = {"model": model, "prompt": prompt, "echo": True, "logprobs": 1, "temperature": 0, **extra}
    status, _, reply = post(server, COMPLETIONS, body)
    assert status == 200, reply
    return json.loads(reply)  # type: ignore[no-any-return]


def assert_same_scores(cached: dict[str, Any], reference: dict[str, Any]) -> None:
    """Equal answers but for the ids and the log-probabilities' last digits."""
    [a], [b] = cached["choices"], reference["choices"]
    assert a["text"] == b["text"] and a["finish_reason"] == b["finish_reason"]
    assert cached["usage"] == reference["usage"]
    la, lb = a["logprobs"], b["logprobs"]
    assert la["tokens"] == lb["tokens"] and la["text_offset"] == lb["text_offset"]
    assert la["token_logprobs"][0] is None and lb["token_logprobs"][0] is None  # nothing before the first token
    for x, y in zip(la["token_logprobs"][1:], lb["token_logprobs"][1:], strict=True):
        assert math.isfinite(x) and x <= 0 and abs(x - y) <= TOLERANCE, (x, y)
    assert [list(t or {}) for t in la["top_logprobs"]] == [list(t or {}) for t in lb["top_logprobs"]]


def test_the_scoring_engine_starts_on_first_use(server: Server) -> None:
    assert engine(server, "tiny")["scorer_started"] is False
    complete(server, "tiny", TOY_PROMPTS[0], max_tokens=1)
    assert engine(server, "tiny")["scorer_started"] is True
    complete(server, "tiny_nocache", TOY_PROMPTS[0], max_tokens=1)
    assert engine(server, "tiny_nocache")["scorer_started"] is False  # its own engine scores prompts


@pytest.mark.parametrize("max_tokens", [0, 1, 4])
def test_toy_scores_equal_with_and_without_prefix_caching(server: Server, max_tokens: int) -> None:
    for prompt in TOY_PROMPTS:
        # The caching engine has seen the prompt: a plain request leaves it in the prefix cache.
        plain = {"model": "tiny", "prompt": prompt, "max_tokens": 2}
        assert post(server, COMPLETIONS, plain)[0] == 200
        cached = complete(server, "tiny", prompt, max_tokens=max_tokens)
        assert_same_scores(cached, complete(server, "tiny_nocache", prompt, max_tokens=max_tokens))
        choice = cached["choices"][0]
        assert choice["text"].startswith(prompt) and "".join(choice["logprobs"]["tokens"]).startswith(prompt)
        assert cached["usage"]["completion_tokens"] <= max_tokens  # (eos may come first)
        if max_tokens == 0:  # only the prompt, scored
            assert choice["text"] == prompt and choice["finish_reason"] == "length"
            assert len(choice["logprobs"]["tokens"]) == cached["usage"]["prompt_tokens"]


def test_token_id_prompts_and_streaming_agree(server: Server) -> None:
    status, _, body = post(server, "/v3/tokenize", {"model": "tiny", "prompt": TOY_PROMPTS[2]})
    ids = json.loads(body)["tokens"]
    assert_same_scores(complete(server, "tiny", ids, max_tokens=2), complete(server, "tiny_nocache", ids, max_tokens=2))

    def streamed(model: str) -> tuple[list[str], list[float | None], str]:
        body = {"model": model, "prompt": TOY_PROMPTS[2], "echo": True, "logprobs": 1, "max_tokens": 2, "stream": True}
        status, _, reply = post(server, COMPLETIONS, body)
        assert status == 200
        events = [json.loads(line[6:]) for line in reply.decode().splitlines() if line.startswith("data: {")]
        choices = [c for e in events for c in e["choices"]]
        tokens = [t for c in choices if c["logprobs"] for t in c["logprobs"]["tokens"]]
        values = [v for c in choices if c["logprobs"] for v in c["logprobs"]["token_logprobs"]]
        return tokens, values, "".join(c["text"] for c in choices)

    (ta, va, text_a), (tb, vb, text_b) = streamed("tiny"), streamed("tiny_nocache")
    assert ta == tb and text_a == text_b and text_a.startswith(TOY_PROMPTS[2])
    assert va[0] is None and vb[0] is None
    assert all(abs(x - y) <= TOLERANCE for x, y in zip(va[1:], vb[1:], strict=True))


def test_smollm2_scores_equal_with_and_without_prefix_caching(server: Server) -> None:
    for prompt in REAL_PROMPTS:
        assert post(server, COMPLETIONS, {"model": "smollm2", "prompt": prompt, "max_tokens": 1})[0] == 200
        cached = complete(server, "smollm2", prompt, max_tokens=0)
        assert_same_scores(cached, complete(server, "smollm2_nocache", prompt, max_tokens=0))
        assert cached["choices"][0]["text"] == prompt  # multi-byte text echoed whole
    # A likely continuation scores higher than an unlikely one.
    paris, potato = (complete(server, "smollm2", f"The capital of France is {w}", max_tokens=0) for w in ("Paris", "potato"))
    assert paris["choices"][0]["logprobs"]["token_logprobs"][-1] > potato["choices"][0]["logprobs"]["token_logprobs"][-1]


def test_bad_requests_are_clear(server: Server) -> None:
    status, _, reply = post(server, COMPLETIONS, {"model": "smollm2", "prompt": "Hi", "echo": True, "max_tokens": 0})
    assert_openai_error(status, reply, 400, "max_tokens")
    status, _, reply = post(server, COMPLETIONS, {"model": "smollm2", "prompt": "Hi", "echo": True, "logprobs": 1, "max_tokens": -1})
    assert_openai_error(status, reply, 400, "max_tokens")


def loglikelihood(resp: list[Any]) -> float:
    """A logged response's log-likelihood: lm_eval logs (loglikelihood, is_greedy) pairs as text."""
    value = resp[0]
    if isinstance(value, str):
        value = ast.literal_eval(value)
    return float(value[0] if isinstance(value, (list, tuple)) else value)


@pytest.fixture(scope="module")
def smollm2_hf_tokenizer(smollm2_cache_dir: Path) -> Path:
    """SmolLM2's tokenizer as a transformers folder (lm_eval's loglikelihood needs one to split
    context and continuation): built from the GGUF once (~20 s) and kept beside the conversion."""
    gguf_file = smollm2_gguf()
    folder = smollm2_cache_dir / f"hf-tokenizer-{gguf_file.stat().st_size}"
    if not (folder / "tokenizer.json").is_file():
        # transformers saves a GGUF's tokenizer as CodeLlamaTokenizer (prefix spaces, wrong ids):
        # keep only its fast tokenizer (the GGUF's BPE, ids as genai gives them) in a plain class.
        script = (
            "import sys; from transformers import AutoTokenizer, PreTrainedTokenizerFast; "
            "tok = AutoTokenizer.from_pretrained(sys.argv[1], gguf_file=sys.argv[2]); "
            "PreTrainedTokenizerFast(tokenizer_object=tok.backend_tokenizer, bos_token='<|im_start|>', "
            "eos_token='<|im_end|>').save_pretrained(sys.argv[3])"
        )
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run([sys.executable, "-c", script, str(gguf_file.parent), gguf_file.name, str(partial)], check=True, timeout=300)
        partial.rename(folder)
    return folder


def test_lm_eval_loglikelihood_task_on_the_caching_servable(server: Server, smollm2_hf_tokenizer: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "OPENAI_"))}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"))
    model_args = {
        "model": "smollm2",
        "base_url": f"{server.base_url}/v3/completions",
        "tokenizer_backend": "huggingface",
        "tokenizer": str(smollm2_hf_tokenizer),
        "max_retries": "1",
    }
    out = tmp_path / "out"
    command = [sys.executable, "-m", "lm_eval", "run", "--model", "local-completions", "--model_args"]
    command += [",".join(f"{k}={v}" for k, v in model_args.items()), "--tasks", TASK, "--include_path", str(TASKS_DIR)]
    command += ["--output_path", str(out), "--log_samples"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, f"lm_eval failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    [results_file] = out.rglob("results_*.json")
    acc = json.loads(results_file.read_text(encoding="utf-8"))["results"][TASK]["acc,none"]
    samples = read_jsonl(next(out.rglob(f"samples_{TASK}_*.jsonl")))
    assert len(samples) == 5 and 0.0 <= acc <= 1.0
    for sample in samples:  # each choice's log-likelihood: finite and negative
        scores = [loglikelihood(resp) for resp in sample["resps"]]
        assert len(scores) == 3 and all(math.isfinite(s) and s < 0 for s in scores)
    france = next(s for s in samples if s["doc"]["country"] == "France")
    assert france["acc"] == 1.0  # " Paris" is the likeliest

"""lm-evaluation-harness (`lm_eval`) against the real server, end to end: its `local-completions`
and `local-chat-completions` models run our own generate-until tasks (tests/e2e/data/lm_eval/:
a YAML task each and a local JSONL dataset of prompts the tiny model was trained on).

lm_eval runs as its CLI in a subprocess, in the repository root (the tasks' `data_files` are
relative to it), with HF_HUB_OFFLINE / HF_DATASETS_OFFLINE set before anything is imported and
an empty HF_HOME, so any download (a dataset, a tokenizer) fails loudly instead of happening.
No tokenizer is needed: local-completions runs with `tokenizer_backend=None` (prompts are sent
as text; lm_eval's default would fetch a tokenizer named like the model from the Hub), and
local-chat-completions sends messages.

Each run evaluates both tasks: the one that fits the model type scores 1.0, with every answer
the server gave equal to the trained one, and the other (chat questions without the chat
template, raw prompts wrapped in it) does not, so the score really is computed from the answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import tests.models as mb
from tests.helpers.files import read_jsonl
from tests.helpers.server import ROOT, Server

TASKS_DIR = ROOT / "tests" / "e2e" / "data" / "lm_eval"
CHAT_TASK = "ovserve_tiny_chat"
COMPLETIONS_TASK = "ovserve_tiny_completions"
RUN_LIMIT_S = 120  # a run takes about 6 s (mostly lm_eval's imports)


def test_task_data_is_what_the_model_was_trained_on() -> None:
    chat = read_jsonl(TASKS_DIR / "tiny_chat.jsonl")
    assert len(chat) >= 5
    assert all(mb.TINY_PROMPTS[row["question"]] == row["answer"] for row in chat)
    completions = read_jsonl(TASKS_DIR / "tiny_completions.jsonl")
    assert {row["prompt"]: row["continuation"] for row in completions} == mb.TINY_COMPLETIONS


def run_lm_eval(tmp_path: Path, model: str, model_args: dict[str, str], *extra: str) -> dict[str, Any]:
    """Run `lm_eval run` on both tasks; its results JSON with `samples` (task -> logged samples)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "OPENAI_"))}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"))
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "lm_eval",
        "run",
        "--model",
        model,
        "--model_args",
        ",".join(f"{k}={v}" for k, v in model_args.items()),
        "--tasks",
        f"{CHAT_TASK},{COMPLETIONS_TASK}",
        "--include_path",
        str(TASKS_DIR),
        "--output_path",
        str(out),
        "--log_samples",
        *extra,
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_LIMIT_S, check=False)
    assert done.returncode == 0, f"lm_eval failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    [results_file] = out.rglob("results_*.json")
    results: dict[str, Any] = json.loads(results_file.read_text(encoding="utf-8"))
    results["samples"] = {task: read_jsonl(next(out.rglob(f"samples_{task}_*.jsonl"))) for task in (CHAT_TASK, COMPLETIONS_TASK)}
    return results


def exact_match(results: dict[str, Any], task: str) -> float:
    return float(results["results"][task]["exact_match,none"])


def answers(results: dict[str, Any], task: str, prompt_field: str) -> dict[str, str]:
    """What the server answered (the samples' responses, as scored), per prompt of the dataset."""
    return {sample["doc"][prompt_field]: sample["filtered_resps"][0] for sample in results["samples"][task]}


def test_local_completions(server: Server, tmp_path: Path) -> None:
    model_args = {
        "model": "tiny",
        "base_url": f"{server.base_url}/v3/completions",
        "tokenizer_backend": "None",
        "max_retries": "1",
    }
    results = run_lm_eval(tmp_path, "local-completions", model_args)
    assert answers(results, COMPLETIONS_TASK, "prompt") == mb.TINY_COMPLETIONS
    assert exact_match(results, COMPLETIONS_TASK) == 1.0
    # The chat questions as raw prompts, without the chat template: not the trained answers.
    assert len(results["samples"][CHAT_TASK]) >= 5
    assert exact_match(results, CHAT_TASK) < 1.0


def test_local_chat_completions(server: Server, tmp_path: Path) -> None:
    model_args = {"model": "tiny", "base_url": f"{server.base_url}/v3/chat/completions", "max_retries": "1"}
    results = run_lm_eval(tmp_path, "local-chat-completions", model_args, "--apply_chat_template")
    asked = answers(results, CHAT_TASK, "question")
    assert len(asked) >= 5
    assert asked == {question: mb.TINY_PROMPTS[question] for question in asked}
    assert exact_match(results, CHAT_TASK) == 1.0
    # The raw completion prompts wrapped as chat messages: not the trained continuations.
    assert exact_match(results, COMPLETIONS_TASK) < 1.0

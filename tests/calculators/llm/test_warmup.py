"""The engine's warm-up at load (calculators/llm/engine/warmup.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openvino_genai as ov_genai

from calculators.llm.engine.warmup import BURST, NEW_TOKENS, warm_up
from tests.models import build_tiny_draft_model


class _FailingPipe:
    """Takes requests, then fails its step, as genai does for a request it cannot run."""

    def __init__(self) -> None:
        self.added: list[int] = []

    def get_tokenizer(self) -> Any:
        class _Tokenizer:
            def encode(self, text: str) -> Any:
                return type("Encoded", (), {"input_ids": [[1, 2, 3]]})()

        return _Tokenizer()

    def add_request(self, request_id: int, ids: Any, config: Any) -> object:
        self.added.append(request_id)
        return object()

    def has_non_finished_requests(self) -> bool:
        return True

    def step(self) -> None:
        raise RuntimeError("Check 'x' failed")


def test_a_failed_warm_up_says_so() -> None:
    pipe = _FailingPipe()
    assert warm_up(pipe, ov_genai, assisted=False) is None  # the engine then builds a new pipeline
    assert len(pipe.added) == 1


def _generate(pipe: Any, config: Any) -> list[int]:
    handle = pipe.add_request(1, pipe.get_tokenizer().encode("Say this is a test").input_ids, config)
    while pipe.has_non_finished_requests():
        pipe.step()
    return list(handle.read_all()[0].generated_ids)


def test_warm_up_runs_its_requests_and_leaves_the_pipeline_serving(tiny_model_dir: Path) -> None:
    config = ov_genai.GenerationConfig(max_new_tokens=4)
    plain = ov_genai.ContinuousBatchingPipeline(str(tiny_model_dir), ov_genai.SchedulerConfig(), "CPU", {})
    expected = _generate(plain, config)
    assert warm_up(plain, ov_genai, assisted=False) is not None
    assert _generate(plain, config) == expected  # the same answer after the warm-up
    draft = ov_genai.draft_model(str(build_tiny_draft_model()), "CPU", scheduler_config=ov_genai.SchedulerConfig())
    assisted = ov_genai.ContinuousBatchingPipeline(str(tiny_model_dir), ov_genai.SchedulerConfig(), "CPU", {"draft_model": draft})
    assert warm_up(assisted, ov_genai, assisted=True) is not None  # a draft model's requests need num_assistant_tokens
    assert BURST > 1 and NEW_TOKENS > 1

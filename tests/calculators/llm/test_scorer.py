"""The prompt scorer's engine spec (calculators/llm/scorer.py): the main engine's, without prefix
caching and with a KV cache grown on demand; LoRA servables score on their own engine."""

from __future__ import annotations

from calculators.llm.engine.base import WorkerSpec
from calculators.llm.scorer import PromptScorer, needs_scorer, scoring_spec

SCHEDULER = {"cache_size": 2, "num_kv_blocks": 0, "max_num_batched_tokens": 2048, "enable_prefix_caching": True}


def test_scoring_spec_is_the_main_one_without_prefix_caching() -> None:
    spec = WorkerSpec("/m", "CPU", dict(SCHEDULER), {"KV_CACHE_PRECISION": "u8"}, draft={"models_path": "/d"})
    scoring = scoring_spec(spec)
    assert scoring.scheduler == {**SCHEDULER, "enable_prefix_caching": False, "cache_size": 0}
    assert (scoring.models_path, scoring.properties, scoring.draft) == (spec.models_path, spec.properties, spec.draft)
    assert spec.scheduler["enable_prefix_caching"] is True  # the main spec is untouched


def test_only_prefix_caching_servables_need_one() -> None:
    assert needs_scorer(WorkerSpec("/m", scheduler=dict(SCHEDULER)))
    assert not needs_scorer(WorkerSpec("/m", scheduler={**SCHEDULER, "enable_prefix_caching": False}))
    adapters = [{"name": "a", "path": "/a.safetensors", "alpha": 1.0}]  # the LoRA worker turns prefix caching off
    assert not needs_scorer(WorkerSpec("/m", scheduler=dict(SCHEDULER), adapters=adapters))


def test_nothing_starts_until_used() -> None:
    scorer = PromptScorer(WorkerSpec("/m", scheduler=dict(SCHEDULER)), "tiny")
    assert not scorer.started

"""`ovserve bench-embeddings --compare`: a tiny run against a real server and the in-process ceiling."""

from __future__ import annotations

import json
from pathlib import Path

from serving.bench.embeddings import build_batches, main


def test_batches_are_seeded() -> None:
    batches = build_batches(3, 2, seed=7)
    assert batches == build_batches(3, 2, seed=7)
    assert all(len(b) == 2 and all(10 <= len(s.split()) <= 20 for s in b) for b in batches)


def test_compare_tiny_run(minilm_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    argv = ["--model-dir", str(minilm_model_dir), "--compare", "--batch-size", "2", "--num-requests", "4", "--max-concurrency", "2"]
    assert main([*argv, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    for part in ("server", "in_process"):
        assert result[part]["succeeded"] == 4 and result[part]["failed"] == 0
        assert result[part]["sentences"] == 8
        assert result[part]["sentences_per_s"] > 0
        assert result[part]["dimensions"] == 384
    assert result["ratio_sentences_per_s"] > 0

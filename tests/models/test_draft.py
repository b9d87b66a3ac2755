"""The tiny draft model (tests/models/draft.py)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.models import (
    build_tiny_draft_model,
    recipe_hash,
    tiny_draft_recipe,
    tiny_recipe,
)

# --------------------------------------------------------------------------- the tiny draft model


def test_draft_model_shares_the_tiny_models_tokenizer(tiny_model_dir: Path) -> None:
    draft = build_tiny_draft_model()
    assert draft.name == f"tiny-draft-{recipe_hash(tiny_draft_recipe())}"
    assert tiny_draft_recipe()["target"] == recipe_hash(tiny_recipe())  # a new tiny model means a new draft
    for name in ("tokenizer.json", "openvino_tokenizer.xml", "openvino_tokenizer.bin", "openvino_detokenizer.xml"):
        assert (draft / name).read_bytes() == (tiny_model_dir / name).read_bytes(), name
    target, small = (json.loads((d / "config.json").read_text()) for d in (tiny_model_dir, draft))
    assert small["vocab_size"] == target["vocab_size"]
    assert small["hidden_size"] < target["hidden_size"]

"""The locally made test and demo models, as the product's developer commands reach them.

The model builders (the tiny chat model, its draft and LoRA adapters, the synthetic bench model,
all-MiniLM-L6-v2, the toy reranker) and the tiny model's trained answers are test fixtures: they
live in ``tests/models/`` of a source checkout, not in the wheel. The commands that use them,
``ovserve demo``, ``ovserve soak``, ``ovserve bench --model-dir tiny|synthetic`` (and
``--prompts tiny``), ``ovserve bench-embeddings --model minilm`` and ``ovserve build-model``,
reach them only through :func:`models`, which imports ``tests.models`` when first asked and
raises :class:`DevModelsUnavailable` (one clear line from the CLI) when run from an installed
wheel: there, give a model folder instead.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

#: The source checkout this package runs from (when it is one).
CHECKOUT = Path(__file__).resolve().parents[1]


class DevModelsUnavailable(RuntimeError):
    """No ``tests/models/`` beside this package: an installed wheel, not a source checkout."""


def models() -> ModuleType:
    """``tests.models`` of the source checkout (build_tiny_model, TINY_PROMPTS, ...)."""
    if not (CHECKOUT / "tests" / "models" / "__init__.py").is_file():
        raise DevModelsUnavailable(
            "the test and demo models (tiny, synthetic, minilm, ...) are built from an ovserve source checkout "
            f"(tests/models/), and {CHECKOUT} is not one: give a model folder instead"
        )
    if str(CHECKOUT) not in sys.path:
        sys.path.append(str(CHECKOUT))
    try:
        return importlib.import_module("tests.models")
    except ModuleNotFoundError as exc:
        if exc.name not in ("tests", "tests.models"):
            raise
        raise DevModelsUnavailable(f"cannot import tests.models from {CHECKOUT} (another 'tests' package shadows it?): {exc}") from None


def main(argv: list[str] | None = None) -> int:
    """``ovserve build-model KIND``: ``python -m tests.models KIND`` (a source checkout only)."""
    models()
    builder = importlib.import_module("tests.models.__main__")
    return int(builder.main(argv, prog="ovserve build-model"))

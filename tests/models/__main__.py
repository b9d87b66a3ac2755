"""``python -m tests.models KIND``: build (or reuse from cache) a locally made model and print its
folder on the last line of stdout (``ovserve build-model KIND`` runs this from a source checkout)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tests.models import (
    build_minilm_model,
    build_synthetic_model,
    build_tiny_diffusion,
    build_tiny_draft_model,
    build_tiny_lora_adapters,
    build_tiny_model,
    build_tiny_reranker,
    build_tiny_tts,
    build_tiny_vlm,
    build_tiny_whisper,
)
from tests.models.common import CACHE_ENV

BUILDERS = {
    "tiny": build_tiny_model,
    "tiny-draft": build_tiny_draft_model,
    "tiny-lora": build_tiny_lora_adapters,
    "minilm": build_minilm_model,
    "tiny-reranker": build_tiny_reranker,
    "tiny-vlm": build_tiny_vlm,
    "tiny-whisper": build_tiny_whisper,
    "tiny-diffusion": build_tiny_diffusion,
    "tiny-tts": build_tiny_tts,
}


def main(argv: list[str] | None = None, prog: str = "python -m tests.models") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Build (or reuse from cache) a locally made OpenVINO test/demo model and print its folder on the last line.",
    )
    parser.add_argument("kind", choices=[*BUILDERS, "synthetic"])
    parser.add_argument("--cache-dir", type=Path, default=None, help=f"cache root (default: ${CACHE_ENV} or <project>/.cache/models)")
    parser.add_argument("--hidden-size", type=int, default=None, help="synthetic only (512)")
    parser.add_argument("--layers", type=int, default=None, help="synthetic only (8)")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("tests.models").setLevel(logging.WARNING if args.quiet else logging.INFO)
    if args.kind in BUILDERS:
        if args.hidden_size is not None or args.layers is not None:
            parser.error("--hidden-size/--layers apply to the synthetic model only")
        path = BUILDERS[args.kind](args.cache_dir)
    else:
        path = build_synthetic_model(
            args.cache_dir,
            hidden_size=args.hidden_size if args.hidden_size is not None else 512,
            num_layers=args.layers if args.layers is not None else 8,
        )
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

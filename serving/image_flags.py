"""Image generation flags (single-model mode `--task image_generation`, and `--source_model`
pulls): OVMS's, each one an option of the graph's ImageGenCalculator node, where the limits live
(requests past them are 400s). Unset flags leave the node's defaults (calculators/image/options.py)."""

from __future__ import annotations

import argparse
from typing import Any

from serving.cli_types import non_negative_int, positive_float, positive_int

# flag -> (type, help); the node option has the flag's name
_FLAGS: dict[str, tuple[Any, str]] = {
    "max_resolution": (str, "largest WIDTHxHEIGHT a request may ask for [4096x4096]"),
    "default_resolution": (str, "WIDTHxHEIGHT when a request gives no size [the model's]"),
    "max_num_images_per_prompt": (positive_int, "most images (n) one request may ask for [10]"),
    "default_num_inference_steps": (positive_int, "denoising steps when a request gives none [50]"),
    "max_num_inference_steps": (positive_int, "most denoising steps a request may ask for [100]"),
    "resolution": (str, "compile for this one WIDTHxHEIGHT (static shapes, as NPU needs); requests must match [dynamic]"),
    "num_images_per_prompt": (positive_int, "with --resolution: the one n requests must ask for [1]"),
    "guidance_scale": (float, "with --resolution: the one guidance_scale requests must use [the model's]"),
}

NODE_OPTIONS = frozenset(_FLAGS)  # the ImageGenCalculatorOptions fields a pull may set (serving/repository/graph_file.py)


def add_image_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("image generation (--task image_generation; the ImageGenCalculator node's options)")
    for name, (kind, text) in _FLAGS.items():
        group.add_argument(f"--{name}", type=kind, help=text)
    # the server's, not the node's: images kept for `response_format: "url"` (serving/image_store.py)
    group.add_argument(
        "--image_url_store_mb",
        type=non_negative_int,
        default=64,
        help="MiB of generated PNGs kept for response_format url answers, least recently used evicted first; 0: url is refused [64]",
    )
    group.add_argument("--image_url_ttl_s", type=positive_float, default=3600.0, help="seconds an image URL answers [3600]")


def image_node_options(args: argparse.Namespace) -> dict[str, Any]:
    """The flags given, as node options (ValueError for a resolution that is not WIDTHxHEIGHT)."""
    from calculators.image.options import parse_resolution

    options = {name: getattr(args, name, None) for name in _FLAGS}
    options = {name: value for name, value in options.items() if value is not None}
    for name in ("max_resolution", "default_resolution", "resolution"):
        if name in options:
            try:
                parse_resolution(str(options[name]))
            except ValueError as exc:
                raise ValueError(f"--{name}: {exc}") from None
    return options

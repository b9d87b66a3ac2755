"""The image_url flags (docs/media.md): where images may come from, how big they may be, and how
many one request may bring. One `MediaPolicy` per server, for its one `MediaLoader`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from serving.cli_types import boolean, comma_list, non_negative_int, positive_float, positive_int

if TYPE_CHECKING:
    from calculators.media.policy import MediaPolicy


def add_media_flags(parser: argparse.ArgumentParser) -> None:
    # (imported here: importing calculators registers the stock calculators, not for subcommands)
    from calculators.media.access import DEFAULT_MAX_IMAGES_PER_REQUEST
    from calculators.media.policy import DEFAULT_MAX_IMAGE_PIXELS, MediaPolicy, MiB

    defaults = MediaPolicy()
    group = parser.add_argument_group("images in chat requests (image_url; see docs/media.md)")
    group.add_argument(
        "--allowed_media_domains",
        help="comma-separated hosts whose http(s) image URLs are fetched: names, IP addresses, *.example.com for its "
        "subdomains [none: no URL is fetched]",
    )
    group.add_argument(
        "--allowed_local_media_path", type=Path, help="absolute folder from which file:// URLs and paths are read [none: no file]"
    )
    group.add_argument(
        "--allow_private_media_addresses",
        nargs="?",
        const=True,
        default=False,
        type=boolean,
        help="also fetch from link-local, cloud metadata and private addresses a name resolves to [false]",
    )
    group.add_argument(
        "--max_image_bytes",
        type=positive_int,
        default=defaults.max_image_bytes,
        help=f"largest encoded image (data URL, file or download) in bytes [{defaults.max_image_bytes // MiB} MiB]",
    )
    group.add_argument(
        "--max_image_pixels",
        type=positive_int,
        default=DEFAULT_MAX_IMAGE_PIXELS,
        help=f"largest width x height, from the image's header before decoding [{DEFAULT_MAX_IMAGE_PIXELS}: one 8K frame]",
    )
    group.add_argument(
        "--media_fetch_timeout",
        type=positive_float,
        default=defaults.fetch_timeout_s,
        help=f"seconds for one whole download, redirects included [{defaults.fetch_timeout_s:g}]",
    )
    group.add_argument(
        "--max_media_redirects",
        type=non_negative_int,
        default=defaults.max_redirects,
        help=f"redirects followed per download [{defaults.max_redirects}]",
    )
    group.add_argument(
        "--max_images_per_request",
        type=positive_int,
        default=DEFAULT_MAX_IMAGES_PER_REQUEST,
        help=f"images one chat request may bring; more is a 400 before any is loaded [{DEFAULT_MAX_IMAGES_PER_REQUEST}]",
    )


def media_policy(args: argparse.Namespace) -> MediaPolicy:
    """The policy the flags describe (ValueError naming a bad --allowed_media_domains entry or a
    relative --allowed_local_media_path)."""
    from calculators.media.policy import MediaPolicy

    return MediaPolicy(
        allowed_domains=comma_list(args.allowed_media_domains),
        allowed_local_path=args.allowed_local_media_path,
        allow_private_addresses=args.allow_private_media_addresses,
        max_image_bytes=args.max_image_bytes,
        max_image_pixels=args.max_image_pixels,
        fetch_timeout_s=args.media_fetch_timeout,
        max_redirects=args.max_media_redirects,
    )

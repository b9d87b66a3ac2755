"""The Responses API's flags: the stored responses' bound and lifetime (serving.responses.store)."""

from __future__ import annotations

import argparse

from serving.cli_types import non_negative_float, non_negative_int
from serving.responses.store import DEFAULT_SIZE, DEFAULT_TTL_S


def add_responses_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Responses API (/v3/responses)")
    group.add_argument(
        "--responses_store_size",
        type=non_negative_int,
        default=DEFAULT_SIZE,
        help=f"stored responses kept per servable for previous_response_id and GET, the oldest dropped; 0: none [{DEFAULT_SIZE}]",
    )
    group.add_argument(
        "--responses_store_ttl",
        type=non_negative_float,
        default=DEFAULT_TTL_S,
        help=f"seconds a stored response is kept [{DEFAULT_TTL_S:g}]",
    )

"""argparse value types shared by `ovserve` and its subcommands (a bad value: one clear line)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def comma_list(text: str | None) -> tuple[str, ...]:
    """`a, b,,c` -> ("a", "b", "c"): the items of a comma-separated flag or header."""
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


def boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {value}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or a positive integer, got {value}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected 0 or a positive number, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def raising_argument_errors(parse: Callable[[str], object]) -> Callable[[str], object]:
    """`parse` as an argparse type: its ValueError becomes the flag's one-line error."""

    def parsed(text: str) -> object:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parsed

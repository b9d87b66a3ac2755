"""Packets: a value with a timestamp, the unit that flows along a stream."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Packet:
    value: Any
    timestamp: int

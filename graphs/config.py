"""Graph configuration as plain, frozen data (parsed from MediaPipe text format by `graphs.pbtxt`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_STREAM_RE = re.compile(r"^(?:([A-Z_][A-Z0-9_]*):)?(?:(\d+):)?([A-Za-z_][A-Za-z0-9_]*)$")


@dataclass(frozen=True, slots=True)
class StreamRef:
    """One `TAG:index:name` stream or side-packet reference. `tag` is "" when absent."""

    tag: str
    index: int
    name: str

    @classmethod
    def parse(cls, spec: str) -> StreamRef:
        match = _STREAM_RE.match(spec.strip())
        if match is None:
            raise ValueError(f"malformed stream spec {spec!r} (expected NAME, TAG:NAME or TAG:INDEX:NAME)")
        tag, index, name = match.groups()
        return cls(tag or "", int(index or 0), name)

    @property
    def tag_index(self) -> str:
        """`TAG:index` as used by `input_stream_info { tag_index }`."""
        return f"{self.tag}:{self.index}"

    def __str__(self) -> str:
        if not self.tag:
            return self.name
        return f"{self.tag}:{self.index}:{self.name}" if self.index else f"{self.tag}:{self.name}"


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """One `node { … }` block."""

    calculator: str
    name: str = ""
    input_streams: tuple[StreamRef, ...] = ()
    output_streams: tuple[StreamRef, ...] = ()
    input_side_packets: tuple[StreamRef, ...] = ()
    output_side_packets: tuple[StreamRef, ...] = ()
    # Fields of the node's options message (the `[type.googleapis.com/X] { … }` block), as a dict.
    options: dict[str, Any] = field(default_factory=dict)
    options_type: str | None = None  # e.g. "mediapipe.LLMCalculatorOptions"
    back_edges: frozenset[str] = frozenset()  # `TAG:index` of inputs marked back_edge
    input_stream_handler: str | None = None

    def input(self, tag: str, index: int = 0) -> StreamRef | None:
        return next((s for s in self.input_streams if s.tag == tag and s.index == index), None)

    def output(self, tag: str, index: int = 0) -> StreamRef | None:
        return next((s for s in self.output_streams if s.tag == tag and s.index == index), None)

    def side_packet(self, tag: str) -> StreamRef | None:
        return next((s for s in self.input_side_packets if s.tag == tag), None)


@dataclass(frozen=True, slots=True)
class GraphConfig:
    """A whole `CalculatorGraphConfig`."""

    nodes: tuple[NodeConfig, ...] = ()
    input_streams: tuple[StreamRef, ...] = ()
    output_streams: tuple[StreamRef, ...] = ()
    input_side_packets: tuple[StreamRef, ...] = ()
    output_side_packets: tuple[StreamRef, ...] = ()
    # From OVMS's `# OVMS_GRAPH_QUEUE_MAX_SIZE: N` comment, when present.
    queue_max_size: int | None = None
    source: str = "<string>"  # file the config came from, for error messages

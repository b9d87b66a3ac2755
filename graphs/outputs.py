"""What a graph run hands its consumer: output packets, and the bound on those it holds."""

from __future__ import annotations

from dataclasses import dataclass

from graphs.config import StreamRef
from graphs.errors import OverloadedError
from graphs.packet import Packet

# Output packets a run holds for a consumer that does not take them (it is stuck writing to a
# client that stopped reading) before it gives up on that consumer: far more than any healthy
# consumer falls behind (one packet per engine step; a stalled step merges later ones), while a
# runaway stays bounded. Front ends that know the packets' sizes bound them in bytes instead
# (GraphRun.bound_outputs).
DEFAULT_MAX_PENDING_OUTPUTS = 4096


class OutputOverflowError(OverloadedError):
    """The run's consumer fell further behind than the run holds outputs for: the run is
    cancelled (its nodes closed: an engine request is dropped) rather than queue without end."""


@dataclass(frozen=True, slots=True)
class OutputPacket:
    stream: StreamRef  # the graph's output_stream entry this came from
    packet: Packet

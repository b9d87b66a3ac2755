"""Per-request timings and per-step engine figures, for an optional observer (the server's metrics).

Nothing here knows about the server. A front end that wants figures attaches a `RequestTelemetry`
(its sink and the request's arrival time) to the graph run it starts, under the request key
`TELEMETRY` (graphs.runner.start_run's `request`; nodes read `ctx.request`). The LLM node then keeps one
`RequestRecord` per request and hands it to the sink when the request ends, and switches the
engine worker's step telemetry on (once per engine). Without a `RequestTelemetry` (metrics off)
no record is kept and the worker sends no extra figures: nothing is done per token.

One clock: `time.perf_counter()` in the server process for every timestamp here; durations the
worker measures (step times, queue times) are measured there and sent as durations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(slots=True)
class RequestRecord:
    """One generation request as the LLM node saw it (timestamps: `time.perf_counter()`)."""

    arrived: float  # the front end got the request (before its body was read)
    prompt_tokens: int = 0
    generated_tokens: int = 0  # tokens the engine delivered (echoed prompt tokens excluded)
    first_token: float = 0.0  # the first generated tokens reached the server (0: none came)
    last_token: float = 0.0  # the last generated tokens reached the server
    finish_reason: str = ""  # the engine's (stop, length, ...); empty when the server ended it

    def tokens(self, count: int, now: float) -> None:
        if not self.first_token:
            self.first_token = now
        self.last_token = now
        self.generated_tokens += count

    @property
    def time_to_first_token(self) -> float:
        return self.first_token - self.arrived

    @property
    def time_per_output_token(self) -> float | None:
        """Mean time between output tokens after the first; None when every token came at once."""
        if self.generated_tokens < 2 or self.last_token <= self.first_token:
            return None
        return (self.last_token - self.first_token) / (self.generated_tokens - 1)


class TelemetrySink(Protocol):
    """What the server's metrics implement."""

    def request_done(self, model: str, record: RequestRecord) -> None:
        """A request that got at least one generated token has ended (any way)."""

    def engine_steps(self, model: str, step_seconds: Sequence[float], queue_seconds: Sequence[float]) -> None:
        """Durations from one worker message: every engine step since the previous message, and
        for each request whose first token came since then, its time in the engine's queue."""

    def images_loaded(self, model: str, seconds: Sequence[float]) -> None:
        """A request's images were loaded (fetched or read, and decoded): each one's time."""

    def images_generated(self, model: str, seconds: float, step_seconds: Sequence[float]) -> None:
        """An image generation or edit ran: the engine's time and each denoising step's."""


@dataclass(frozen=True, slots=True)
class RequestTelemetry:
    sink: TelemetrySink
    arrived: float  # time.perf_counter() when the front end got the request


TELEMETRY = "telemetry"  # the request key a RequestTelemetry goes under

"""The calculator contract: what a node consumes, produces and needs, declared as data.

A calculator is cheap and per request (one instance per node per graph run). Heavy objects
(engine clients, tokenizers) are *side packets*: built once when a servable loads, by the
`ResourceProvider` a calculator declares for a side-packet tag, and shared by every run.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from graphs.packet import Packet


class Options(BaseModel):
    """Base of every calculator options schema: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoOptions(Options):
    pass


@dataclass(frozen=True, slots=True)
class ResourceContext:
    """What a resource provider gets besides the node's options."""

    base_path: Path  # the servable's folder: relative paths in options resolve against it
    servable_name: str
    node_name: str


class Resource(Protocol):
    async def aclose(self) -> None: ...


# Builds a side packet from a node's validated options, once per servable.
ResourceProvider = Callable[[Any, ResourceContext], Awaitable[Resource]]


@dataclass(frozen=True, slots=True)
class Contract:
    """Tags a calculator accepts. Every tag in a node must appear here; `required_*` must be bound."""

    inputs: frozenset[str] = frozenset()
    outputs: frozenset[str] = frozenset()
    side_packets: frozenset[str] = frozenset()
    required_inputs: frozenset[str] = frozenset()
    required_outputs: frozenset[str] = frozenset()
    required_side_packets: frozenset[str] = frozenset()
    options: type[Options] = NoOptions
    # side-packet tag -> provider that builds it from this node's options (see ResourceProvider)
    providers: Mapping[str, ResourceProvider] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        *,
        inputs: tuple[str, ...] = (),
        outputs: tuple[str, ...] = (),
        side_packets: tuple[str, ...] = (),
        optional: tuple[str, ...] = (),
        options: type[Options] = NoOptions,
        providers: Mapping[str, ResourceProvider] | None = None,
    ) -> Contract:
        """Build a contract; every tag is required unless listed in `optional`."""
        opt = frozenset(optional)
        return cls(
            inputs=frozenset(inputs),
            outputs=frozenset(outputs),
            side_packets=frozenset(side_packets),
            required_inputs=frozenset(inputs) - opt,
            required_outputs=frozenset(outputs) - opt,
            required_side_packets=frozenset(side_packets) - opt,
            options=options,
            providers=dict(providers or {}),
        )


class CalculatorContext(Protocol):
    """What the runner gives a calculator instance."""

    node_name: str
    options: Any  # the validated instance of `contract.options`
    side_packets: Mapping[str, Any]  # tag -> value
    request: Mapping[str, Any]  # what the front end attached to this request (graphs.runner.start_run)

    def has_output(self, tag: str) -> bool: ...

    def emit(self, tag: str, value: Any, timestamp: int | None = None) -> None:
        """Send a packet downstream; without a timestamp, the stream's next one is used."""

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a task the node waits for before it closes (cancelled with the run)."""

    def record_span(self, name: str, start_ns: int, end_ns: int, args: Mapping[str, Any] | None = None) -> None:
        """In a traced run, one piece of this node's work (times from time.perf_counter_ns(),
        `args` small names and numbers, e.g. one image download); nothing when untraced."""


class InputSet(Mapping[str, Packet]):
    """The packets of one `process()` call, by tag (inputs without a packet are absent)."""

    __slots__ = ("_packets", "timestamp")

    def __init__(self, packets: dict[str, Packet], timestamp: int) -> None:
        self._packets = packets
        self.timestamp = timestamp

    def __getitem__(self, tag: str) -> Packet:
        return self._packets[tag]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._packets)

    def __len__(self) -> int:
        return len(self._packets)

    def value(self, tag: str, default: Any = None) -> Any:
        packet = self._packets.get(tag)
        return default if packet is None else packet.value


class Calculator(abc.ABC):
    """Base class. Subclasses set `contract` and implement `process`.

    Lifecycle per run: `open()`, then `process()` once per input set (timestamps strictly
    increasing per stream), then `close()` — always, also when the run is cancelled or fails.
    """

    contract: ClassVar[Contract] = Contract()
    # True when process() never awaits anything that suspends (pure computation on its inputs).
    # The runner then calls it in the turn of the node that sent the packet, instead of waking
    # this node's task: per-token stages cost a function call, not a task switch. Must stay
    # False for calculators that wait on I/O or other tasks in process().
    inline: ClassVar[bool] = False

    def __init__(self, ctx: CalculatorContext) -> None:
        self.ctx = ctx

    async def open(self) -> None:  # noqa: B027 - optional hook
        pass

    @abc.abstractmethod
    async def process(self, inputs: InputSet) -> None: ...

    async def close(self) -> None:  # noqa: B027 - optional hook
        pass

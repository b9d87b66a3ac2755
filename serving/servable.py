"""A servable: one validated graph plus the side packets (engine workers, tokenizers) it runs on."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calculators.llm.lora import served_name, split_model_name
from graphs import GraphConfig, ResourceContext
from graphs.errors import NotFoundError, UnavailableError
from graphs.runner import GraphRun, start_run
from graphs.trace import Trace
from graphs.validate import ValidatedGraph

log = logging.getLogger("ovserve.servable")

SHUTTING_DOWN = "the server is shutting down; retry on another replica"  # what a draining server answers (503)


class State(enum.Enum):
    LOADING = "loading"
    AVAILABLE = "available"
    FAILED = "failed"
    UNLOADED = "unloaded"  # retired for good (removed by a reload, or the server stops)
    IDLE = "idle"  # lazy: not loaded now; the next request loads it


@dataclass
class Servable:
    name: str
    base_path: Path
    graph: ValidatedGraph
    state: State = State.LOADING
    error: str | None = None
    created: int = field(default_factory=lambda: int(time.time()))
    side_packets: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""  # what it was built from (folder + graph text): a reload rebuilds it when this changes
    active: int = 0  # graph runs in flight
    lazy: bool = False  # load on the first request, not at startup
    idle_unload_s: float | None = None  # free the resources after this long without requests
    _idle: asyncio.Event = field(default_factory=asyncio.Event)
    _loading: asyncio.Task[None] | None = None
    _unload_timer: asyncio.TimerHandle | None = None

    @property
    def adapters(self) -> tuple[str, ...]:
        """LoRA adapters its LLM node lists, each served as "<name>:<adapter>" on its engine."""
        return tuple(a.name for node in self.graph.nodes for a in getattr(node.options, "lora_adapters", ()))

    def served_names(self) -> list[str]:
        return [self.name, *(served_name(self.name, adapter) for adapter in self.adapters)]

    @property
    def input_tags(self) -> set[str]:
        return {ref.tag for ref in self.graph.config.input_streams}

    async def load(self) -> None:
        """Build every side packet a node's contract provides (once, shared by the nodes)."""
        self.state = State.LOADING
        try:
            for node in self.graph.nodes:
                providers = node.calculator.contract.providers
                for ref in node.config.input_side_packets:
                    provider = providers.get(ref.tag)
                    if provider is None or ref.name in self.side_packets:
                        continue
                    ctx = ResourceContext(self.base_path, self.name, node.name)
                    self.side_packets[ref.name] = await provider(node.options, ctx)
        except Exception as exc:
            self.state = State.FAILED
            self.error = str(exc) if not isinstance(exc, UnavailableError) else exc.message
            log.error("servable %s failed to load: %s", self.name, self.error)
            await self.aclose()
            self.state = State.FAILED
            return
        self.state = State.AVAILABLE
        log.info("servable %s is available", self.name)

    @property
    def healthy(self) -> bool:
        """Available and every resource healthy (an engine worker being restarted is not)."""
        return self.state is State.AVAILABLE and all(getattr(v, "healthy", True) for v in self.side_packets.values())

    def stats(self) -> dict[str, Any]:
        resources = {name: v.stats() for name, v in self.side_packets.items() if callable(getattr(v, "stats", None))}
        return {"state": self.state.value, "error": self.error, "resources": resources}

    async def ensure_loaded(self) -> None:
        """A lazy or idle-unloaded servable loads now (requests arriving meanwhile wait for the
        same load)."""
        if self.state is not State.IDLE and self._loading is None:
            return
        if self._loading is None:
            log.info("servable %s: loading on demand", self.name)
            self._loading = asyncio.get_running_loop().create_task(self.load(), name=f"load:{self.name}")
            self._loading.add_done_callback(lambda _: setattr(self, "_loading", None))
        await asyncio.shield(self._loading)

    def start(self, inputs: dict[str, Any], trace: Trace | None = None, request: Mapping[str, Any] | None = None) -> GraphRun:
        """Start a graph run (recording into `trace` if given; `request`: see graphs.runner.start_run);
        the caller must `await finish(run)` when done with it."""
        if self._unload_timer is not None:
            self._unload_timer.cancel()
            self._unload_timer = None
        if self.state is State.LOADING:
            raise UnavailableError(f"model {self.name!r} is still loading")
        if self.state is not State.AVAILABLE:
            raise UnavailableError(f"model {self.name!r} is not available: {self.error or self.state.value}")
        run = start_run(self.graph, self.side_packets, inputs, trace=trace, request=request)
        self.active += 1
        self._idle.clear()
        return run

    async def finish(self, run: GraphRun) -> None:
        try:
            await run.aclose()
        finally:
            self.active -= 1
            if self.active == 0:
                self._idle.set()
                if self.idle_unload_s is not None and self.state is State.AVAILABLE:
                    loop = asyncio.get_running_loop()
                    self._unload_timer = loop.call_later(self.idle_unload_s, lambda: loop.create_task(self._unload_if_idle()))

    async def _unload_if_idle(self) -> None:
        self._unload_timer = None
        if self.active or self.state is not State.AVAILABLE:
            return
        log.info("servable %s: idle for %ss, unloading (the next request loads it again)", self.name, self.idle_unload_s)
        self.state = State.IDLE
        packets, self.side_packets = self.side_packets, {}
        await _close_all(self.name, packets)

    async def wait_idle(self) -> None:
        """Return once no graph run of this servable is in flight."""
        if self.active:
            await self._idle.wait()

    async def retire(self) -> None:
        """Stop taking requests, let the runs in flight finish, then free the resources."""
        if self.state is State.AVAILABLE:
            self.state = State.UNLOADED
        await self.wait_idle()
        await self.aclose()

    async def aclose(self) -> None:
        if self._unload_timer is not None:
            self._unload_timer.cancel()
        packets, self.side_packets = self.side_packets, {}
        await _close_all(self.name, packets)
        if self.state in (State.AVAILABLE, State.IDLE):
            self.state = State.UNLOADED


async def _close_all(name: str, packets: dict[str, Any]) -> None:
    for value in packets.values():
        close = getattr(value, "aclose", None)
        if close is not None:
            try:
                await close()
            except Exception:
                log.exception("closing a resource of %s failed", name)


class ServableManager:
    """The servables of one server, by name."""

    def __init__(self, servables: Iterable[Servable]) -> None:
        self._servables = {s.name: s for s in servables}
        # Set on SIGTERM: readiness turns false and new requests get a 503 while those in flight finish.
        self.draining = False

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._servables.values())

    def get(self, name: str) -> Servable:
        """The servable a request names (404 when unknown; 503 while the server drains).
        "<servable>:<adapter>" names a LoRA adapter of that servable: its engine runs the request
        (the request keeps the name it gave; the tokenizer node selects the adapter from it)."""
        if self.draining:
            raise UnavailableError(SHUTTING_DOWN)
        servable = self.find(name)
        if servable is None:
            raise NotFoundError(f"model {name!r} not found", param="model", code="model_not_found")
        return servable

    def find(self, name: str) -> Servable | None:
        """The servable `name` runs on (a servable's own name, or one of its LoRA adapters'), or None."""
        servable = self._servables.get(name)
        if servable is not None:
            return servable
        base, adapter = split_model_name(name)
        servable = self._servables.get(base) if adapter is not None else None
        return servable if servable is not None and adapter in servable.adapters else None

    @property
    def ready(self) -> bool:
        """Not draining, nothing is still loading or restarting its engine, and something serves
        (servables that failed are logged; lazy ones count as serving: they load on their first
        request)."""
        servables = self._servables.values()
        states = [s.state for s in servables]
        restarting = any(s.state is State.AVAILABLE and not s.healthy for s in servables)
        return not (self.draining or restarting) and State.LOADING not in states and (State.AVAILABLE in states or State.IDLE in states)

    async def load_all(self) -> None:
        for servable in self._servables.values():
            if servable.lazy and servable.state is State.LOADING:
                servable.state = State.IDLE
        await asyncio.gather(*(s.load() for s in self._servables.values() if not s.lazy))

    def by_name(self) -> dict[str, Servable]:
        return dict(self._servables)

    def replace(self, servables: Iterable[Servable]) -> None:
        """Serve exactly these from now on (requests already running keep their servable)."""
        self._servables = {s.name: s for s in servables}

    async def aclose(self) -> None:
        await asyncio.gather(*(s.aclose() for s in self._servables.values()))


def make_servable(
    name: str, base_path: Path, config: GraphConfig, fingerprint: str = "", lazy: bool = False, idle_unload_s: float | None = None
) -> Servable:
    """Validate (raises GraphConfigError listing every problem) and wrap a graph config."""
    from graphs.validate import validate

    return Servable(name, base_path, validate(config), fingerprint=fingerprint, lazy=lazy, idle_unload_s=idle_unload_s)

"""One graph run per request, on asyncio.

Every node runs as one task. A node gets an input set when each of its (non back-edge)
inputs either has a packet or is closed; the set holds the packets with the smallest
timestamp (MediaPipe's default input policy, with stream closure standing in for timestamp
bounds). Back-edge inputs are delivered on their own as soon as they arrive, so a node can
be told something (e.g. "stop") while work it spawned is still running. A node closes once
its inputs are closed and drained and its spawned tasks are done; then its outputs close.
The run ends when every graph output stream has closed.

A run started with a `graphs.trace.Trace` records each node's open/process/close times and
packet counts into it; its nodes are `_TracedNodeRun`s, so untraced runs pay nothing per packet.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import Any

from graphs.calculator import Calculator, InputSet
from graphs.config import StreamRef
from graphs.outputs import DEFAULT_MAX_PENDING_OUTPUTS, OutputOverflowError, OutputPacket
from graphs.packet import Packet
from graphs.trace import NodeTrace, Trace
from graphs.validate import ValidatedGraph, ValidatedNode

_now = time.perf_counter_ns
Process = Callable[[InputSet], Coroutine[Any, Any, None]]


class _Slot:
    """One input of one node: a FIFO of packets plus whether its producer is done."""

    __slots__ = ("key", "back_edge", "packets", "open")

    def __init__(self, key: str, back_edge: bool) -> None:
        self.key = key
        self.back_edge = back_edge
        self.packets: deque[Packet] = deque()
        self.open = True


_END = object()


class _Stream:
    """Fan-out of one named stream to the slots that consume it and/or the graph output."""

    __slots__ = ("name", "consumers", "outputs", "last_timestamp")

    def __init__(self, name: str) -> None:
        self.name = name
        self.consumers: list[tuple[_NodeRun, _Slot]] = []
        self.outputs: list[StreamRef] = []
        self.last_timestamp = -1


class _NodeRun:
    def __init__(self, node: ValidatedNode, run: GraphRun) -> None:
        self.node = node
        self.run = run
        self.node_name = node.name
        self.options = node.options
        self.side_packets: Mapping[str, Any] = {
            ref.tag: run.side_packets[ref.name] for ref in node.config.input_side_packets if ref.name in run.side_packets
        }
        self.request = run.request
        self.slots: dict[str, _Slot] = {}
        for ref in node.config.input_streams:
            key = _tag_key(ref)
            self.slots[key] = _Slot(key, ref.tag_index in node.config.back_edges)
        self.sync_slots = [s for s in self.slots.values() if not s.back_edge]
        self.back_slots = [s for s in self.slots.values() if s.back_edge]
        self.outputs: dict[str, _Stream] = {}
        self.wakeup = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.closing = False  # in its final clean-up: a further cancel() would cut close() short
        # Inline calculators run in the turn of whoever sends them a packet (see Calculator.inline)
        self.inline = node.calculator.inline
        self.calculator: Calculator | None = None  # set once open() has returned
        self.process: Process  # what runs an input set (set with `calculator`; see _process_of)
        self.processing = False
        self.trace: NodeTrace | None = None  # see _TracedNodeRun

    # -- CalculatorContext --------------------------------------------------------------
    def has_output(self, tag: str) -> bool:
        return tag in self.outputs

    def emit(self, tag: str, value: Any, timestamp: int | None = None) -> None:
        stream = self.outputs.get(tag)
        if stream is None:
            return  # optional output not connected in this graph
        ts = stream.last_timestamp + 1 if timestamp is None else timestamp
        if ts <= stream.last_timestamp:
            raise RuntimeError(f"node {self.node_name!r}: timestamp {ts} on stream {stream.name!r} is not after {stream.last_timestamp}")
        stream.last_timestamp = ts
        packet = Packet(value, ts)
        for consumer, slot in stream.consumers:
            slot.packets.append(packet)
            if consumer.inline and consumer.calculator is not None and not consumer.processing:
                consumer.process_inline()
            else:
                consumer.wakeup.set()
        for ref in stream.outputs:
            self.run._output(OutputPacket(ref, packet))

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.run._fail(task.exception(), self)  # type: ignore[arg-type]
        self.wakeup.set()

    def process_inline(self) -> None:
        """Process every ready input set now, in the caller's turn (no task switch per packet).
        The calculator promised its process() never suspends; a failure fails this run only."""
        assert self.calculator is not None
        if self.run._error is not None:
            return
        process = self.process
        self.processing = True
        try:
            while (inputs := self._next_set()) is not None:
                coro = process(inputs)
                try:
                    coro.send(None)
                except StopIteration:
                    continue
                coro.close()
                raise RuntimeError(f"node {self.node_name!r}: an inline calculator's process() must not await")
            if self._finished_inputs():
                self.wakeup.set()  # let the node's task close it
        except Exception as exc:
            self.run._fail(exc, self)
        finally:
            self.processing = False

    def _process_of(self, calculator: Calculator) -> Process:
        """What runs an input set: the calculator's own process() (a traced node times it)."""
        return calculator.process

    # -- scheduling ---------------------------------------------------------------------
    def _next_set(self) -> InputSet | None:
        for slot in self.back_slots:
            if slot.packets:
                packet = slot.packets.popleft()
                return InputSet({slot.key: packet}, packet.timestamp)
        if not self.sync_slots:
            return None
        heads: list[_Slot] = []
        for slot in self.sync_slots:
            if slot.packets:
                heads.append(slot)
            elif slot.open:
                return None  # wait: this input may still bring a packet for an earlier timestamp
        if not heads:
            return None
        ts = min(s.packets[0].timestamp for s in heads)
        return InputSet({s.key: s.packets.popleft() for s in heads if s.packets[0].timestamp == ts}, ts)

    def _finished_inputs(self) -> bool:
        return all(not s.open and not s.packets for s in self.sync_slots) and not any(s.packets for s in self.back_slots)

    async def main(self) -> None:
        calculator: Calculator | None = None
        trace = self.trace  # None unless the run is traced: then a few clock reads per node
        if trace is not None:
            trace.open_start = _now()
        try:
            calculator = self.node.calculator(self)
            await calculator.open()
            if trace is not None:
                trace.open_end = _now()
            process = self.process = self._process_of(calculator)
            self.calculator = calculator
            while True:
                self.wakeup.clear()
                self.processing = True
                try:
                    while (inputs := self._next_set()) is not None:
                        await process(inputs)
                finally:
                    self.processing = False
                if self.run._error is not None or (self._finished_inputs() and not self.tasks):
                    break
                await self.wakeup.wait()
        except asyncio.CancelledError:
            if trace is not None:
                trace.cancelled = True
            raise
        except Exception as exc:
            # Record the failure before this node's outputs close: closing the last graph output
            # ends the iteration, which must then raise instead of ending as if all went well.
            self.closing = True
            self.run._fail(exc, self)
            raise
        finally:
            self.closing = True
            self.calculator = None  # no more inline processing once closing
            if trace is not None:
                trace.close_start = _now()
                if not trace.open_end:  # open() failed or was cancelled
                    trace.open_end = trace.close_start
            for task in list(self.tasks):
                task.cancel()
            if self.tasks:
                await asyncio.gather(*self.tasks, return_exceptions=True)
            try:
                if calculator is not None:
                    await calculator.close()
            except Exception as exc:
                self.run._fail(exc, self)
                raise
            finally:
                if trace is not None:
                    trace.close_end = _now()
                self.run._close_outputs(self)


class _TracedNodeRun(_NodeRun):
    """A node of a traced run: the same as _NodeRun, plus records of each emit, spawned task and
    process() call. A separate class so that untraced runs keep the per-packet paths untouched."""

    trace: NodeTrace

    def __init__(self, node: ValidatedNode, run: GraphRun, trace: NodeTrace) -> None:
        super().__init__(node, run)
        self.trace = trace

    def emit(self, tag: str, value: Any, timestamp: int | None = None) -> None:
        at = _now()
        _NodeRun.emit(self, tag, value, timestamp)  # a bad timestamp raises: not counted
        if tag in self.outputs:
            self.trace.emitted(tag, at)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        super().spawn(self._timed(coro, _now()))

    async def _timed(self, coro: Coroutine[Any, Any, None], start: int) -> None:
        try:
            await coro
        finally:
            self.trace.tasks.extend((start, _now()))

    def _process_of(self, calculator: Calculator) -> Process:
        """process() timed: inline calls too, and a broken inline promise (closed mid-call)."""
        process, trace = calculator.process, self.trace

        async def timed(inputs: InputSet) -> None:
            start = _now()
            try:
                await process(inputs)
            finally:
                trace.processed(start, inputs)

        return timed


def _tag_key(ref: StreamRef) -> str:
    return ref.tag if ref.index == 0 else f"{ref.tag}:{ref.index}"


class GraphRun:
    """A started run: iterate it for output packets; `aclose()` cancels what is left."""

    def __init__(
        self,
        graph: ValidatedGraph,
        side_packets: Mapping[str, Any],
        inputs: Mapping[str, Any],
        trace: Trace | None = None,
        request: Mapping[str, Any] | None = None,
    ) -> None:
        self.graph = graph
        self.side_packets = side_packets
        self.trace = trace
        self.request: Mapping[str, Any] = request or {}
        self._outputs: asyncio.Queue[Any] = asyncio.Queue()
        self._sink: Callable[[OutputPacket], bool] | None = None
        # The bound on queued outputs (see bound_outputs): each queued packet's weight, in order
        self._weights: deque[int] = deque()
        self._pending = 0
        self._max_pending = DEFAULT_MAX_PENDING_OUTPUTS
        self._weigh: Callable[[OutputPacket], int] | None = None  # None: a packet weighs 1
        self._on_overflow: Callable[[], None] | None = None
        self._held: Callable[[], int] | None = None  # what the consumer holds already, counted too
        self._error: BaseException | None = None
        self._open_outputs = {ref.name for ref in graph.config.output_streams}
        self._nodes: list[_NodeRun]
        if trace is None:
            self._nodes = [_NodeRun(node, self) for node in graph.nodes]
        else:
            traces = trace._start((node.name, node.calculator.__name__, node.calculator.inline) for node in graph.nodes)
            self._nodes = [_TracedNodeRun(node, self, nt) for node, nt in zip(graph.nodes, traces, strict=True)]
        streams: dict[str, _Stream] = {}

        def stream(name: str) -> _Stream:
            return streams.setdefault(name, _Stream(name))

        for nr in self._nodes:
            for ref in nr.node.config.output_streams:
                nr.outputs[_tag_key(ref)] = stream(ref.name)
            for ref in nr.node.config.input_streams:
                stream(ref.name).consumers.append((nr, nr.slots[_tag_key(ref)]))
        for ref in graph.config.output_streams:
            stream(ref.name).outputs.append(ref)
        # Graph input streams: one packet each at timestamp 0, then closed.
        for ref in graph.config.input_streams:
            s = streams.get(ref.name)
            for key in (ref.tag, ref.name):
                if key in inputs:
                    packet = Packet(inputs[key], 0)
                    break
            else:
                packet = None
            if s is not None:
                for _, slot in s.consumers:
                    if packet is not None:
                        slot.packets.append(packet)
                    slot.open = False
                for out in s.outputs:
                    if packet is not None:
                        self._weights.append(0)
                        self._outputs.put_nowait(OutputPacket(out, packet))
                    self._output_closed(out.name)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(nr.main(), name=f"node:{nr.node_name}") for nr in self._nodes]
        for task in self._tasks:
            task.add_done_callback(self._node_done)
        if not self._open_outputs:
            self._outputs.put_nowait(_END)

    def _node_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._fail(task.exception())  # type: ignore[arg-type]
        if self.trace is not None:
            self.trace._node_finished()

    def _fail(self, error: BaseException, node: _NodeRun | None = None) -> None:
        if self.trace is not None:
            self.trace._failed(error, node.node_name if node is not None else None)
            if node is not None and node.trace is not None and node.trace.error is None:
                node.trace.error = type(error).__name__
        if self._error is None:
            self._error = error
            self._cancel_nodes()
            self._outputs.put_nowait(_END)

    def _cancel_nodes(self) -> None:
        # Only nodes not yet closing: cancelling one inside its clean-up would skip close().
        # Nor the node whose own turn this is (a failure inside its emit()): a cancel would land
        # in its close(); it sees the failure and stops by itself.
        current = asyncio.current_task()
        for nr, task in zip(self._nodes, self._tasks, strict=True):
            if not nr.closing and task is not current:
                task.cancel()

    def set_sink(self, sink: Callable[[OutputPacket], bool] | None) -> None:
        """From now on offer each output packet to `sink` in the producer's turn; a packet it
        declines (returns False) and every one after it are queued for iteration as usual.
        None: no sink (every packet is queued)."""
        self._sink = sink if self._outputs.empty() else None

    def bound_outputs(
        self,
        limit: int,
        weigh: Callable[[OutputPacket], int] | None = None,
        on_overflow: Callable[[], None] | None = None,
        held: Callable[[], int] | None = None,
    ) -> None:
        """Hold at most `limit` of queued outputs (packets, or the sum of `weigh(packet)`, e.g.
        bytes) for a consumer that does not take them (a packet is queued whatever its weight
        when nothing else waits). Beyond it the run fails with
        OutputOverflowError (its nodes are cancelled) and `on_overflow` is called once, in the
        producer's turn: the consumer is stuck elsewhere (e.g. waiting for a client to read) and
        must be freed from there (e.g. by dropping that connection). Set it before the first
        output packet; until then a run holds DEFAULT_MAX_PENDING_OUTPUTS packets. `held`: what
        the consumer holds elsewhere and counts against the same limit (e.g. a transport's
        unsent bytes), read only when a packet has to queue behind another."""
        self._max_pending = limit
        self._weigh = weigh
        self._on_overflow = on_overflow
        self._held = held

    def _output(self, packet: OutputPacket) -> None:
        sink = self._sink
        if sink is not None:
            if sink(packet):
                return
            self._sink = None  # keep the order: everything from here on goes through the queue
        if self._error is not None:
            return  # the iteration ends at the failure: nobody would take it
        weight = 1 if self._weigh is None else self._weigh(packet)
        self._pending += weight
        if self._weights:  # one packet alone always waits (the consumer is about to take it)
            held = 0 if self._held is None else self._held()
            if self._pending + held > self._max_pending:
                self._overflow()
                return
        self._weights.append(weight)
        self._outputs.put_nowait(packet)

    def _overflow(self) -> None:
        limit = self._max_pending if self._weigh is None else f"{self._max_pending} (weighed)"
        self._fail(OutputOverflowError(f"the request's consumer fell behind by more than {limit} queued outputs; cancelled"))
        if self._on_overflow is not None:
            self._on_overflow()

    def _output_closed(self, name: str) -> None:
        if name in self._open_outputs:
            self._open_outputs.discard(name)
            if not self._open_outputs:
                self._outputs.put_nowait(_END)

    def _close_outputs(self, nr: _NodeRun) -> None:
        for stream in nr.outputs.values():
            for consumer, slot in stream.consumers:
                slot.open = False
                consumer.wakeup.set()
            for ref in stream.outputs:
                self._output_closed(ref.name)

    def __aiter__(self) -> AsyncIterator[OutputPacket]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[OutputPacket]:
        while True:
            item = await self._outputs.get()
            if item is _END:
                if self._error is not None:
                    raise self._error
                return
            self._pending -= self._weights.popleft()
            yield item

    async def settle(self, timeout_s: float) -> None:
        """Wait up to `timeout_s` for every node to close by itself (nothing is cancelled)."""
        await asyncio.wait(self._tasks, timeout=timeout_s)

    async def aclose(self) -> None:
        """Cancel every node still running and wait until each has closed."""
        self._cancel_nodes()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def start_run(
    graph: ValidatedGraph,
    side_packets: Mapping[str, Any],
    inputs: Mapping[str, Any],
    trace: Trace | None = None,
    request: Mapping[str, Any] | None = None,
) -> GraphRun:
    """Start one run: `inputs` maps a graph input stream's tag or name to its single packet.
    With a `trace` (graphs.trace.Trace), the run records into it what each node did and when.
    `request`: values the front end attaches to this request, which every node reads as
    `ctx.request` (e.g. the metrics' telemetry sink); passed explicitly, not as ContextVars."""
    return GraphRun(graph, side_packets, inputs, trace, request)

"""A node's part of one graph run: its input slots, its output streams, and the calls a calculator
makes through its context (emit, spawn). graphs.runner's GraphRun drives them.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from graphs.calculator import Calculator, InputSet
from graphs.config import StreamRef
from graphs.outputs import OutputPacket
from graphs.packet import Packet
from graphs.trace import NodeTrace
from graphs.validate import ValidatedNode

if TYPE_CHECKING:  # the run creates its nodes
    from graphs.runner import GraphRun

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


class Stream:
    """Fan-out of one named stream to the slots that consume it and/or the graph output."""

    __slots__ = ("name", "consumers", "outputs", "last_timestamp")

    def __init__(self, name: str) -> None:
        self.name = name
        self.consumers: list[tuple[NodeRun, _Slot]] = []
        self.outputs: list[StreamRef] = []
        self.last_timestamp = -1


class NodeRun:
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
            key = tag_key(ref)
            self.slots[key] = _Slot(key, ref.tag_index in node.config.back_edges)
        self.sync_slots = [s for s in self.slots.values() if not s.back_edge]
        self.back_slots = [s for s in self.slots.values() if s.back_edge]
        self.outputs: dict[str, Stream] = {}
        self.wakeup = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.closing = False  # in its final clean-up: a further cancel() would cut close() short
        # Inline calculators run in the turn of whoever sends them a packet (see Calculator.inline)
        self.inline = node.calculator.inline
        self.calculator: Calculator | None = None  # set once open() has returned
        self.process: Process  # what runs an input set (set with `calculator`; see _process_of)
        self.processing = False
        self.trace: NodeTrace | None = None  # see TracedNodeRun

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

    def record_span(self, name: str, start_ns: int, end_ns: int, args: Mapping[str, Any] | None = None) -> None:
        pass  # untraced (TracedNodeRun records it)

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


class TracedNodeRun(NodeRun):
    """A node of a traced run: the same as NodeRun, plus records of each emit, spawned task and
    process() call. A separate class so that untraced runs keep the per-packet paths untouched."""

    trace: NodeTrace

    def __init__(self, node: ValidatedNode, run: GraphRun, trace: NodeTrace) -> None:
        super().__init__(node, run)
        self.trace = trace

    def emit(self, tag: str, value: Any, timestamp: int | None = None) -> None:
        at = _now()
        NodeRun.emit(self, tag, value, timestamp)  # a bad timestamp raises: not counted
        if tag in self.outputs:
            self.trace.emitted(tag, at)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        super().spawn(self._timed(coro, _now()))

    def record_span(self, name: str, start_ns: int, end_ns: int, args: Mapping[str, Any] | None = None) -> None:
        self.trace.spanned(name, start_ns, end_ns, args)

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


def tag_key(ref: StreamRef) -> str:
    return ref.tag if ref.index == 0 else f"{ref.tag}:{ref.index}"

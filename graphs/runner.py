"""One graph run per request, on asyncio.

Every node runs as one task. A node gets an input set when each of its (non back-edge)
inputs either has a packet or is closed; the set holds the packets with the smallest
timestamp (MediaPipe's default input policy, with stream closure standing in for timestamp
bounds). Back-edge inputs are delivered on their own as soon as they arrive, so a node can
be told something (e.g. "stop") while work it spawned is still running. A node closes once
its inputs are closed and drained and its spawned tasks are done; then its outputs close.
The run ends when every graph output stream has closed.

A run started with a `graphs.trace.Trace` records each node's open/process/close times and
packet counts into it; its nodes are `TracedNodeRun`s, so untraced runs pay nothing per packet.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from graphs.node_run import NodeRun, Stream, TracedNodeRun, tag_key
from graphs.outputs import DEFAULT_MAX_PENDING_OUTPUTS, OutputOverflowError, OutputPacket
from graphs.packet import Packet
from graphs.trace import Trace
from graphs.validate import ValidatedGraph

_END = object()  # the outputs queue's end marker


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
        self._nodes: list[NodeRun]
        if trace is None:
            self._nodes = [NodeRun(node, self) for node in graph.nodes]
        else:
            traces = trace._start((node.name, node.calculator.__name__, node.calculator.inline) for node in graph.nodes)
            self._nodes = [TracedNodeRun(node, self, nt) for node, nt in zip(graph.nodes, traces, strict=True)]
        streams: dict[str, Stream] = {}

        def stream(name: str) -> Stream:
            return streams.setdefault(name, Stream(name))

        for nr in self._nodes:
            for ref in nr.node.config.output_streams:
                nr.outputs[tag_key(ref)] = stream(ref.name)
            for ref in nr.node.config.input_streams:
                stream(ref.name).consumers.append((nr, nr.slots[tag_key(ref)]))
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

    def _fail(self, error: BaseException, node: NodeRun | None = None) -> None:
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

    def _close_outputs(self, nr: NodeRun) -> None:
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

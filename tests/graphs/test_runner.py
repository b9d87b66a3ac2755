"""The per-request graph runner, with small test calculators in a fresh Registry.

Sequencing uses asyncio.Event and plain loop yields (`asyncio.sleep(0)`), never wall-clock
time; `asyncio.timeout` only guards against a hang turning into a stuck test run.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from graphs.calculator import Calculator, Contract, InputSet
from graphs.pbtxt import parse_graph
from graphs.registry import Registry
from graphs.runner import GraphRun, start_run
from graphs.validate import ValidatedGraph, validate

HANG_GUARD_S = 10


class Probe:
    """Shared by every node of one run (a graph input side packet): what happened, in order."""

    def __init__(self) -> None:
        self.opened: list[str] = []
        self.closed: list[str] = []
        self.events: dict[str, asyncio.Event] = {}
        self.flags: set[str] = set()
        self.records: list[Any] = []

    def event(self, name: str) -> asyncio.Event:
        return self.events.setdefault(name, asyncio.Event())


registry = Registry()


class Probed(Calculator):
    """Records open/close; close awaits once, like a calculator that releases a resource."""

    probe: Probe

    async def open(self) -> None:
        self.probe = self.ctx.side_packets["LOG"]
        self.probe.opened.append(self.ctx.node_name)

    async def close(self) -> None:
        await asyncio.sleep(0)
        self.probe.closed.append(self.ctx.node_name)


@registry.calculator()
class Script(Probed):
    """Plays the script it gets on SCRIPT: ("emit", value, ts|None), ("wait", event),
    ("set", event), ("flag", name), ("yield", n), ("raise", message)."""

    contract = Contract.of(inputs=("SCRIPT",), outputs=("OUT",), side_packets=("LOG",))

    async def process(self, inputs: InputSet) -> None:
        for step in inputs["SCRIPT"].value:
            match step:
                case ("emit", value, ts):
                    self.ctx.emit("OUT", value, ts)
                case ("wait", name):
                    await self.probe.event(name).wait()
                case ("set", name):
                    self.probe.event(name).set()
                case ("flag", name):
                    self.probe.flags.add(name)
                case ("yield", n):
                    for _ in range(n):
                        await asyncio.sleep(0)
                case ("raise", message):
                    raise ValueError(message)
                case _:
                    raise AssertionError(f"bad script step {step!r}")


@registry.calculator()
class AddOne(Probed):
    contract = Contract.of(inputs=("IN",), outputs=("OUT",), side_packets=("LOG",))

    async def process(self, inputs: InputSet) -> None:
        value = inputs["IN"].value
        if value == "boom":
            raise ValueError("boom in AddOne")
        self.ctx.emit("OUT", value + 1, inputs.timestamp)


@registry.calculator()
class Join(Probed):
    """Records each input set (tag -> value), its timestamp and the flags set at that moment."""

    contract = Contract.of(inputs=("A", "B"), outputs=("OUT",), side_packets=("LOG",), optional=("OUT",))

    async def process(self, inputs: InputSet) -> None:
        values = {tag: packet.value for tag, packet in inputs.items()}
        assert all(packet.timestamp == inputs.timestamp for packet in inputs.values())
        self.probe.records.append((values, inputs.timestamp, frozenset(self.probe.flags)))
        self.ctx.emit("OUT", values, inputs.timestamp)


@registry.calculator()
class Pump(Probed):
    """Like the LLM node: START spawns a task that emits ticks 1..3 and then waits for a packet
    on the STOP back edge before emitting "stopped" (with no STOP bound, it waits forever)."""

    contract = Contract.of(inputs=("START", "STOP"), outputs=("TICK",), side_packets=("LOG",), optional=("STOP",))

    async def open(self) -> None:
        await super().open()
        self.stop = asyncio.Event()
        self.pumping = False

    async def process(self, inputs: InputSet) -> None:
        if "STOP" in inputs:
            self.probe.records.append(("STOP", inputs["STOP"].value, "while pumping" if self.pumping else "after"))
            self.stop.set()
            return
        self.ctx.spawn(self._pump())

    async def _pump(self) -> None:
        self.pumping = True
        try:
            for tick in (1, 2, 3):
                self.ctx.emit("TICK", tick)
            self.probe.event("pumped").set()
            await self.stop.wait()
            self.ctx.emit("TICK", "stopped")
        except asyncio.CancelledError:
            self.probe.records.append(("pump cancelled", self.ctx.node_name))
            raise
        finally:
            self.pumping = False


@registry.calculator()
class Stopper(Probed):
    """Sends STOP (back into the pump) when it sees tick 2."""

    contract = Contract.of(inputs=("TICK",), outputs=("STOP",), side_packets=("LOG",))

    async def process(self, inputs: InputSet) -> None:
        if inputs["TICK"].value == 2:
            self.ctx.emit("STOP", "please stop")


def build(text: str) -> ValidatedGraph:
    return validate(parse_graph('input_side_packet: "log"\n' + text), registry)


async def collect(run: GraphRun) -> list[tuple[str, Any, int]]:
    async with asyncio.timeout(HANG_GUARD_S):
        return [(out.stream.name, out.packet.value, out.packet.timestamp) async for out in run]


# --- a linear chain -----------------------------------------------------------------------------

CHAIN = build(
    """
    input_stream: "SCRIPT:script"
    output_stream: "OUT:plus2"
    node { calculator: "Script" input_stream: "SCRIPT:script" output_stream: "OUT:numbers" input_side_packet: "LOG:log" }
    node { name: "first" calculator: "AddOne" input_stream: "IN:numbers" output_stream: "OUT:plus1" input_side_packet: "LOG:log" }
    node { name: "second" calculator: "AddOne" input_stream: "IN:plus1" output_stream: "OUT:plus2" input_side_packet: "LOG:log" }
    """
)


async def test_linear_chain_passes_packets_in_timestamp_order() -> None:
    probe = Probe()
    script = [("emit", 10, 3), ("emit", 20, 7), ("emit", 30, None), ("emit", 40, 100)]
    outputs = await collect(start_run(CHAIN, {"log": probe}, {"SCRIPT": script}))
    # Default timestamps continue the stream (7 -> 8); explicit ones are kept all along the chain.
    assert outputs == [("plus2", 12, 3), ("plus2", 22, 7), ("plus2", 32, 8), ("plus2", 42, 100)]
    assert sorted(probe.opened) == sorted(probe.closed) == ["Script_0", "first", "second"]


async def test_graph_input_is_found_by_stream_name_too() -> None:
    outputs = await collect(start_run(CHAIN, {"log": Probe()}, {"script": [("emit", 1, None)]}))
    assert outputs == [("plus2", 3, 0)]


async def test_run_without_graph_input_packet_ends_with_no_outputs() -> None:
    probe = Probe()
    assert await collect(start_run(CHAIN, {"log": probe}, {})) == []
    assert sorted(probe.closed) == ["Script_0", "first", "second"]


# --- two inputs: input sets aligned by timestamp -------------------------------------------------

JOIN = build(
    """
    input_stream: "A:a_script"
    input_stream: "B:b_script"
    output_stream: "OUT:joined"
    node { name: "a" calculator: "Script" input_stream: "SCRIPT:a_script" output_stream: "OUT:a" input_side_packet: "LOG:log" }
    node { name: "b" calculator: "Script" input_stream: "SCRIPT:b_script" output_stream: "OUT:b" input_side_packet: "LOG:log" }
    node { name: "join" calculator: "Join" input_stream: "A:a" input_stream: "B:b" output_stream: "OUT:joined"
           input_side_packet: "LOG:log" }
    """
)


async def test_two_inputs_wait_for_each_other_and_align_by_timestamp() -> None:
    probe = Probe()
    a_script = [("emit", "a1", 1), ("emit", "a2", 2), ("emit", "a4", 4), ("set", "a_done")]
    # B starts only once A has emitted everything, and then lets the join node run plenty of
    # times: a join that did not wait for B would already have taken A's packets alone.
    b_script = [("wait", "a_done"), ("yield", 20), ("flag", "b_started"), ("emit", "b2", 2), ("emit", "b3", 3)]
    outputs = await collect(start_run(JOIN, {"log": probe}, {"A": a_script, "B": b_script}))
    assert [(values, ts) for values, ts, _ in probe.records] == [
        ({"A": "a1"}, 1),  # B's first packet is at 2: nothing of B can come at 1 any more
        ({"A": "a2", "B": "b2"}, 2),
        ({"B": "b3"}, 3),
        ({"A": "a4"}, 4),  # taken only once B closed
    ]
    assert all("b_started" in flags for _, _, flags in probe.records), "join ran before B had a packet or closed"
    assert [ts for _, _, ts in outputs] == [1, 2, 3, 4]


async def test_an_input_closed_without_packets_does_not_block_the_other() -> None:
    probe = Probe()
    a_script = [("emit", "a1", 1), ("emit", "a2", 2)]
    outputs = await collect(start_run(JOIN, {"log": probe}, {"A": a_script, "B": []}))
    assert [values for _, values, _ in outputs] == [{"A": "a1"}, {"A": "a2"}]


# --- a back edge delivers while the receiver's spawned task runs ---------------------------------

LOOP = build(
    """
    input_stream: "START:start"
    output_stream: "TICK:ticks"
    node {
      name: "pump" calculator: "Pump"
      input_stream: "START:start"
      input_stream: "STOP:stop"
      input_stream_info { tag_index: "STOP:0" back_edge: true }
      output_stream: "TICK:ticks"
      input_side_packet: "LOG:log"
    }
    node { name: "stopper" calculator: "Stopper" input_stream: "TICK:ticks" output_stream: "STOP:stop" input_side_packet: "LOG:log" }
    """
)


async def test_back_edge_packet_reaches_node_while_its_spawned_task_runs() -> None:
    probe = Probe()
    run = start_run(LOOP, {"log": probe}, {"START": True})
    outputs = await collect(run)
    await run.aclose()  # the stopper feeds no graph output: it may still be closing here
    assert [value for _, value, _ in outputs] == [1, 2, 3, "stopped"]
    assert [ts for _, _, ts in outputs] == [0, 1, 2, 3]
    assert probe.records == [("STOP", "please stop", "while pumping")]
    assert sorted(probe.closed) == ["pump", "stopper"]


# --- timestamps must increase --------------------------------------------------------------------


@pytest.mark.parametrize("timestamps", [(5, 5), (5, 3), (0, 0)], ids=["equal", "smaller", "equal-at-zero"])
async def test_non_increasing_timestamp_fails_the_run(timestamps: tuple[int, int]) -> None:
    probe = Probe()
    script = [("emit", "x", timestamps[0]), ("emit", "y", timestamps[1])]
    run = start_run(CHAIN, {"log": probe}, {"SCRIPT": script})
    with pytest.raises(RuntimeError, match=r"node 'Script_0': timestamp \d+ on stream 'numbers' is not after"):
        await collect(run)
    await run.aclose()
    assert sorted(probe.closed) == sorted(probe.opened)


# --- errors and cancellation reach every close() --------------------------------------------------

SHORT = build(
    """
    input_stream: "SCRIPT:script"
    output_stream: "OUT:plus1"
    node { name: "source" calculator: "Script" input_stream: "SCRIPT:script" output_stream: "OUT:numbers" input_side_packet: "LOG:log" }
    node { name: "add" calculator: "AddOne" input_stream: "IN:numbers" output_stream: "OUT:plus1" input_side_packet: "LOG:log" }
    """
)


@registry.calculator()
class CloseFails(Probed):
    contract = Contract.of(inputs=("IN",), outputs=("OUT",), side_packets=("LOG",))

    async def process(self, inputs: InputSet) -> None:
        self.ctx.emit("OUT", inputs["IN"].value, inputs.timestamp)

    async def close(self) -> None:
        raise RuntimeError("close failed")


CLOSE_FAILS = build(
    """
    input_stream: "IN:in"
    output_stream: "OUT:out"
    node { calculator: "CloseFails" input_stream: "IN:in" output_stream: "OUT:out" input_side_packet: "LOG:log" }
    """
)

FAN = build(
    """
    input_stream: "SCRIPT:script"
    input_stream: "START:start"
    output_stream: "OUT:plus1"
    output_stream: "TICK:ticks"
    node { name: "source" calculator: "Script" input_stream: "SCRIPT:script" output_stream: "OUT:numbers" input_side_packet: "LOG:log" }
    node { name: "add" calculator: "AddOne" input_stream: "IN:numbers" output_stream: "OUT:plus1" input_side_packet: "LOG:log" }
    node { name: "pump" calculator: "Pump" input_stream: "START:start" output_stream: "TICK:ticks" input_side_packet: "LOG:log" }
    """
)
FAN_NODES = ["add", "pump", "source"]


async def test_calculator_exception_surfaces_and_every_close_runs() -> None:
    probe = Probe()
    # "boom" is sent once the pump's spawned task is running (and waiting forever).
    script = [("emit", 1, None), ("wait", "pumped"), ("emit", "boom", None)]
    run = start_run(FAN, {"log": probe}, {"SCRIPT": script, "START": True})
    seen = []
    with pytest.raises(ValueError, match="boom in AddOne"):
        async with asyncio.timeout(HANG_GUARD_S):
            async for out in run:
                seen.append((out.stream.name, out.packet.value))
    assert ("plus1", 2) in seen
    await run.aclose()
    assert sorted(probe.opened) == FAN_NODES
    assert sorted(probe.closed) == FAN_NODES
    assert ("pump cancelled", "pump") in probe.records


async def test_exception_in_a_script_node_surfaces() -> None:
    probe = Probe()
    run = start_run(CHAIN, {"log": probe}, {"SCRIPT": [("emit", 1, None), ("raise", "script failed")]})
    with pytest.raises(ValueError, match="script failed"):
        await collect(run)
    await run.aclose()
    assert "Script_0" in probe.opened
    assert sorted(probe.closed) == sorted(probe.opened)  # nodes cancelled before they opened need no close


async def test_exception_in_the_node_feeding_the_graph_output_surfaces() -> None:
    """The failing node closes the graph's last output itself: the run must still raise."""
    probe = Probe()
    run = start_run(SHORT, {"log": probe}, {"SCRIPT": [("emit", 1, None), ("emit", "boom", None)]})
    outputs = []
    with pytest.raises(ValueError, match="boom in AddOne"):
        async with asyncio.timeout(HANG_GUARD_S):
            async for out in run:
                outputs.append(out.packet.value)
    assert outputs in ([], [2])
    await run.aclose()
    assert sorted(probe.closed) == sorted(probe.opened)


async def test_exception_in_close_surfaces() -> None:
    run = start_run(CLOSE_FAILS, {"log": Probe()}, {"IN": 1})
    with pytest.raises(RuntimeError, match="close failed"):
        await collect(run)
    await run.aclose()


async def test_aclose_mid_run_cancels_and_every_close_runs() -> None:
    probe = Probe()
    # The source waits for an event nobody sets; the pump's task waits for a STOP that never comes.
    script = [("emit", 1, None), ("wait", "never")]
    run = start_run(FAN, {"log": probe}, {"SCRIPT": script, "START": True})
    got = []
    async with asyncio.timeout(HANG_GUARD_S):
        async for out in run:
            got.append((out.stream.name, out.packet.value))
            if ("plus1", 2) in got and ("ticks", 3) in got:
                break
        await run.aclose()
    assert sorted(probe.opened) == FAN_NODES
    assert sorted(probe.closed) == FAN_NODES
    assert ("pump cancelled", "pump") in probe.records
    assert all(task.done() for task in run._tasks)


async def test_aclose_after_a_normal_end_is_harmless() -> None:
    probe = Probe()
    run = start_run(CHAIN, {"log": probe}, {"SCRIPT": [("emit", 1, None)]})
    assert await collect(run) == [("plus2", 3, 0)]
    await run.aclose()
    assert sorted(probe.closed) == ["Script_0", "first", "second"]


# --- graph inputs fan out -----------------------------------------------------------------------

FAN_OUT = build(
    """
    input_stream: "IN:numbers"
    output_stream: "OUT:numbers"
    output_stream: "A:from_a"
    output_stream: "B:from_b"
    node { name: "a" calculator: "AddOne" input_stream: "IN:numbers" output_stream: "OUT:from_a" input_side_packet: "LOG:log" }
    node { name: "b" calculator: "AddOne" input_stream: "IN:numbers" output_stream: "OUT:from_b" input_side_packet: "LOG:log" }
    node { name: "join" calculator: "Join" input_stream: "A:from_a" input_stream: "B:numbers" input_side_packet: "LOG:log" }
    """
)


async def test_graph_input_reaches_every_consumer() -> None:
    probe = Probe()
    outputs = await collect(start_run(FAN_OUT, {"log": probe}, {"IN": 41}))
    assert sorted(outputs) == [("from_a", 42, 0), ("from_b", 42, 0), ("numbers", 41, 0)]
    assert [values for values, _, _ in probe.records] == [{"A": 42, "B": 41}]


# --- inline calculators: processed in the sender's turn ------------------------------------------


@registry.calculator()
class InlineAddOne(Probed):
    """Records whether it ran inside the sender's emit() (the Script node's "flag" marks that)."""

    inline = True
    contract = Contract.of(inputs=("IN",), outputs=("OUT",), side_packets=("LOG",))

    async def process(self, inputs: InputSet) -> None:
        self.probe.records.append((inputs["IN"].value, "emitting" in self.probe.flags))
        self.ctx.emit("OUT", inputs["IN"].value + 1, inputs.timestamp)


@registry.calculator()
class InlineButAwaits(Probed):
    inline = True
    contract = Contract.of(inputs=("IN",), outputs=("OUT",), side_packets=("LOG",))

    async def process(self, inputs: InputSet) -> None:
        await asyncio.sleep(0)  # breaks the inline promise
        self.ctx.emit("OUT", inputs["IN"].value, inputs.timestamp)


@registry.calculator()
class FlaggingEmitter(Probed):
    """Emits each value of its SCRIPT list with the "emitting" flag set around the emit()."""

    contract = Contract.of(inputs=("SCRIPT",), outputs=("OUT",), side_packets=("LOG",))

    async def process(self, inputs: InputSet) -> None:
        for value in inputs["SCRIPT"].value:
            await asyncio.sleep(0)  # let the downstream node open first
            self.probe.flags.add("emitting")
            self.ctx.emit("OUT", value)
            self.probe.flags.discard("emitting")


def inline_graph(calculator: str) -> ValidatedGraph:
    return build(
        f"""
        input_stream: "SCRIPT:script"
        output_stream: "OUT:out"
        node {{ name: "src" calculator: "FlaggingEmitter" input_stream: "SCRIPT:script" output_stream: "OUT:numbers"
               input_side_packet: "LOG:log" }}
        node {{ name: "inline" calculator: "{calculator}" input_stream: "IN:numbers" output_stream: "OUT:out"
               input_side_packet: "LOG:log" }}
        """
    )


async def test_inline_calculator_runs_in_the_senders_turn() -> None:
    probe = Probe()
    outputs = await collect(start_run(inline_graph("InlineAddOne"), {"log": probe}, {"SCRIPT": [1, 2, 3]}))
    assert outputs == [("out", 2, 0), ("out", 3, 1), ("out", 4, 2)]
    # every packet after the node opened was processed inside the sender's emit()
    assert [value for value, inside in probe.records if inside] == [1, 2, 3]
    assert sorted(probe.closed) == ["inline", "src"]


async def test_inline_calculator_that_awaits_fails_the_run_clearly() -> None:
    probe = Probe()
    run = start_run(inline_graph("InlineButAwaits"), {"log": probe}, {"SCRIPT": [1]})
    with pytest.raises(RuntimeError, match="inline calculator's process"):
        await collect(run)
    await run.aclose()
    assert sorted(probe.closed) == ["inline", "src"]

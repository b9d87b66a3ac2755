"""Test calculators (Probe-recording Script, AddOne, Join, Pump, ...) on one registry, and the graphs the runner and trace tests share."""

from __future__ import annotations

import asyncio
from typing import Any

from graphs.calculator import Calculator, Contract, InputSet
from graphs.pbtxt import parse_graph
from graphs.registry import Registry
from graphs.runner import GraphRun
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


@registry.calculator()
class CloseFails(Probed):
    contract = Contract.of(inputs=("IN",), outputs=("OUT",), side_packets=("LOG",))

    async def process(self, inputs: InputSet) -> None:
        self.ctx.emit("OUT", inputs["IN"].value, inputs.timestamp)

    async def close(self) -> None:
        raise RuntimeError("close failed")


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

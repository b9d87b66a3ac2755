"""Test a calculator alone, through the real graph runner, with given input packets.

For our tests and for yours (see docs/calculators.md):

    outputs = await run_calculator(
        OpenAIResponseCalculator,
        {"REQUEST": [request], "TEXT": [chunk1, chunk2]},
    )
    outputs["HTTP_RESPONSE_PAYLOAD"]  # -> list[Packet]

Each input tag gets a feeder node that emits its packets (plain values get timestamps 0, 1, 2,
…; pass `Packet`s to choose them) and then closes the stream. Every output tag of the
calculator's contract (or those named in `outputs`) becomes a graph output. Options are
validated against the calculator's schema; `side_packets` maps the calculator's side-packet
tags to values. An exception raised by the calculator propagates from `run_calculator`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from graphs.calculator import Calculator, Contract, InputSet
from graphs.config import GraphConfig, NodeConfig, StreamRef
from graphs.packet import Packet
from graphs.registry import Registry
from graphs.runner import start_run
from graphs.validate import validate

HANG_GUARD_S = 30.0


class _Feeder(Calculator):
    """Emits the packets of its PACKETS side packet on OUT when it opens, then closes."""

    contract = Contract.of(outputs=("OUT",), side_packets=("PACKETS",))

    async def open(self) -> None:
        for packet in self.ctx.side_packets["PACKETS"]:
            self.ctx.emit("OUT", packet.value, packet.timestamp)

    async def process(self, inputs: InputSet) -> None:  # no inputs: never called
        raise AssertionError("a feeder has no inputs")


def _packets(values: Iterable[Any]) -> list[Packet]:
    packets: list[Packet] = []
    for value in values:
        if isinstance(value, Packet):
            packets.append(value)
        else:
            packets.append(Packet(value, packets[-1].timestamp + 1 if packets else 0))
    return packets


def _ref(tag: str, name: str) -> StreamRef:
    tag, _, index = tag.partition(":")
    return StreamRef(tag, int(index or 0), name)


def _name(tag: str) -> str:
    return tag.lower().replace(":", "_")


async def run_calculator(
    calculator: type[Calculator],
    inputs: Mapping[str, Sequence[Any]],
    *,
    options: Mapping[str, Any] | None = None,
    side_packets: Mapping[str, Any] | None = None,
    outputs: Sequence[str] | None = None,
) -> dict[str, list[Packet]]:
    """Run `calculator` once on `inputs` (tag -> values); return its outputs (tag -> packets)."""
    registry = Registry(declare_options=False)  # built from NodeConfigs, never from text
    registry.add_calculator(_Feeder, "_Feeder")
    registry.add_calculator(calculator, "UnderTest")
    output_tags = list(outputs if outputs is not None else sorted(calculator.contract.outputs))
    side_values: dict[str, Any] = {f"side_{_name(tag)}": value for tag, value in (side_packets or {}).items()}
    nodes = []
    for tag, values in inputs.items():
        side_values[f"packets_{_name(tag)}"] = _packets(values)
        nodes.append(
            NodeConfig(
                calculator="_Feeder",
                name=f"feed_{_name(tag)}",
                output_streams=(StreamRef("OUT", 0, f"in_{_name(tag)}"),),
                input_side_packets=(StreamRef("PACKETS", 0, f"packets_{_name(tag)}"),),
            )
        )
    nodes.append(
        NodeConfig(
            calculator="UnderTest",
            name="under_test",
            input_streams=tuple(_ref(tag, f"in_{_name(tag)}") for tag in inputs),
            output_streams=tuple(_ref(tag, f"out_{_name(tag)}") for tag in output_tags),
            input_side_packets=tuple(_ref(tag, f"side_{_name(tag)}") for tag in (side_packets or {})),
            options=dict(options or {}),
        )
    )
    config = GraphConfig(
        nodes=tuple(nodes),
        output_streams=tuple(StreamRef(tag.partition(":")[0], 0, f"out_{_name(tag)}") for tag in output_tags),
        input_side_packets=tuple(StreamRef("", 0, name) for name in side_values),
        source="<harness>",
    )
    graph = validate(config, registry)
    run = start_run(graph, side_values, {})
    by_stream = {f"out_{_name(tag)}": tag for tag in output_tags}
    collected: dict[str, list[Packet]] = {tag: [] for tag in output_tags}
    try:
        async with asyncio.timeout(HANG_GUARD_S):
            async for out in run:
                collected[by_stream[out.stream.name]].append(out.packet)
    finally:
        await run.aclose()
    return collected

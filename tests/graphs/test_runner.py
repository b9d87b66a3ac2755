"""The per-request graph runner, with small test calculators in a fresh Registry.

Sequencing uses asyncio.Event and plain loop yields (`asyncio.sleep(0)`), never wall-clock
time; `asyncio.timeout` only guards against a hang turning into a stuck test run.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from graphs.runner import DEFAULT_MAX_PENDING_OUTPUTS, OutputOverflowError, start_run
from tests.helpers.graphs import FAN, HANG_GUARD_S, Probe, build, collect, inline_graph

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


CLOSE_FAILS = build(
    """
    input_stream: "IN:in"
    output_stream: "OUT:out"
    node { calculator: "CloseFails" input_stream: "IN:in" output_stream: "OUT:out" input_side_packet: "LOG:log" }
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


# --- bounded outputs: a consumer that stops taking them ------------------------------------------

SOURCE = build(
    """
    input_stream: "SCRIPT:script"
    output_stream: "OUT:numbers"
    node { name: "source" calculator: "Script" input_stream: "SCRIPT:script" output_stream: "OUT:numbers" input_side_packet: "LOG:log" }
    """
)


async def test_a_consumer_that_stops_taking_outputs_has_its_run_cancelled() -> None:
    """Like an SSE handler stuck writing to a client that does not read: the source would emit
    forever; past the bound the run fails, its nodes close (an engine request would be dropped)
    and on_overflow is told once, so the stuck consumer can be freed."""
    probe = Probe()
    overflows: list[str] = []
    run = start_run(SOURCE, {"log": probe}, {"SCRIPT": [("emit", i, None) for i in range(10)] + [("wait", "never")]})
    run.bound_outputs(3, on_overflow=lambda: overflows.append("overflow"))
    got = []
    with pytest.raises(OutputOverflowError):
        async with asyncio.timeout(HANG_GUARD_S):
            async for out in run:
                got.append(out.packet.value)
    assert overflows == ["overflow"]
    assert got == [0, 1, 2]  # what was queued within the bound is still delivered, then the error
    await run.aclose()
    assert probe.closed == ["source"]


async def test_outputs_are_bounded_by_weight_and_a_keeping_up_consumer_is_never_cut() -> None:
    def weigh(out: Any) -> int:
        return len(out.packet.value)

    script: list[Any] = [step for _ in range(20) for step in (("emit", "x" * 10, None), ("yield", 2))]  # taken in time
    run = start_run(SOURCE, {"log": Probe()}, {"SCRIPT": script})
    run.bound_outputs(15, weigh)
    assert len(await collect(run)) == 20
    run = start_run(SOURCE, {"log": Probe()}, {"SCRIPT": [("emit", "x" * 100, None)]})
    run.bound_outputs(15, weigh)  # one answer larger than the bound (a big JSON body) still goes out
    assert len(await collect(run)) == 1
    run = start_run(SOURCE, {"log": Probe()}, {"SCRIPT": [("emit", "x" * 10, None)] * 2 + [("wait", "never")]})
    run.bound_outputs(15, weigh)  # the second 10 would make 20 queued
    with pytest.raises(OutputOverflowError):
        await collect(run)
    await run.aclose()


async def test_every_run_has_a_default_bound() -> None:
    probe = Probe()
    script = [("emit", i, None) for i in range(DEFAULT_MAX_PENDING_OUTPUTS + 1)] + [("wait", "never")]
    run = start_run(SOURCE, {"log": probe}, {"SCRIPT": script})
    with pytest.raises(OutputOverflowError):
        await collect(run)
    await run.aclose()
    assert probe.closed == ["source"]

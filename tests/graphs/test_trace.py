"""Per-run traces (graphs/trace.py) recorded by the runner: what each node did, in numbers that
must agree with the packets that flowed, and a Chrome trace that is well formed.

Only orderings and counts are checked, never durations: the clock is real."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

import pytest

import graphs.trace
from graphs.calculator import Calculator, Contract, InputSet
from graphs.node_run import NodeRun
from graphs.runner import GraphRun, start_run
from graphs.trace import TID_STRIDE, NodeTrace, Trace
from graphs.validate import ValidatedGraph
from tests.helpers.graphs import FAN, HANG_GUARD_S, Probe, build, collect, inline_graph, registry

# A task node feeding an inline node (processed in the sender's turn), and a node whose spawned
# task emits while a back edge tells it to stop (as the LLM node and the detokenizer do).
MIXED = build(
    """
    input_stream: "SCRIPT:script"
    input_stream: "START:start"
    output_stream: "OUT:out"
    output_stream: "TICK:ticks"
    node { name: "src" calculator: "FlaggingEmitter" input_stream: "SCRIPT:script" output_stream: "OUT:numbers"
           input_side_packet: "LOG:log" }
    node { name: "inline" calculator: "InlineAddOne" input_stream: "IN:numbers" output_stream: "OUT:out" input_side_packet: "LOG:log" }
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
VALUES = [1, 2, 3, 4, 5]


async def traced(graph: ValidatedGraph, inputs: dict[str, Any], **labels: str) -> tuple[Trace, GraphRun, list[Any], BaseException | None]:
    trace = Trace(**labels)
    run = start_run(graph, {"log": Probe()}, inputs, trace=trace)
    outputs: list[Any] = []
    error: BaseException | None = None
    try:
        outputs = await collect(run)
    except Exception as exc:
        error = exc
    async with asyncio.timeout(HANG_GUARD_S):
        await run.aclose()
    return trace, run, outputs, error


def by_name(trace: Trace) -> dict[str, NodeTrace]:
    return {node.name: node for node in trace.nodes}


def calls(node: NodeTrace) -> list[tuple[int, int, int, int]]:
    """(start, duration, input timestamp, tag set id) of each recorded process() call, in ns."""
    r = node.calls_recorded
    return [(r[i], r[i + 1], r[i + 2], r[i + 3]) for i in range(0, len(r), 4)]


def stream_flow(graph: ValidatedGraph, trace: Trace) -> list[tuple[str, int, str, int]]:
    """(producer.tag, packets out, consumer.tag, packets in) for every node-to-node stream."""
    nodes = by_name(trace)
    producers = {ref.name: (n.name, ref.tag) for n in graph.nodes for ref in n.config.output_streams}
    flow = []
    for n in graph.nodes:
        for ref in n.config.input_streams:
            if ref.name in producers:
                producer, out_tag = producers[ref.name]
                flow.append(
                    (
                        f"{producer}.{out_tag}",
                        nodes[producer].packets_out.get(out_tag, 0),
                        f"{n.name}.{ref.tag}",
                        nodes[n.name].packets_in.get(ref.tag, 0),
                    )
                )
    return flow


# --- counts ---------------------------------------------------------------------------------------


async def test_counts_match_the_packets_that_flowed() -> None:
    trace, run, outputs, error = await traced(MIXED, {"SCRIPT": VALUES, "START": True}, servable="s", endpoint="e")
    assert error is None
    assert [v for stream, v, _ in outputs if stream == "out"] == [2, 3, 4, 5, 6]
    assert [v for stream, v, _ in outputs if stream == "ticks"] == [1, 2, 3, "stopped"]
    nodes = by_name(trace)
    assert [n.name for n in trace.nodes] == ["src", "inline", "pump", "stopper"]
    assert (nodes["src"].calls, nodes["src"].packets_in, nodes["src"].packets_out) == (1, {"SCRIPT": 1}, {"OUT": 5})
    assert (nodes["inline"].calls, nodes["inline"].packets_in, nodes["inline"].packets_out) == (5, {"IN": 5}, {"OUT": 5})
    # START once, then STOP over the back edge; ticks 1..3 and "stopped" come from the spawned task
    assert (nodes["pump"].calls, nodes["pump"].packets_in, nodes["pump"].packets_out) == (2, {"START": 1, "STOP": 1}, {"TICK": 4})
    assert (nodes["stopper"].calls, nodes["stopper"].packets_in, nodes["stopper"].packets_out) == (4, {"TICK": 4}, {"STOP": 1})
    for producer, sent, consumer, taken in stream_flow(MIXED, trace):
        assert sent == taken, f"{producer} sent {sent}, {consumer} took {taken}"
    for node in trace.nodes:  # one process() call per input set: as many as the packets taken for one-input nodes
        assert node.calls == len(calls(node))
        assert node.emits == sum(node.packets_out.values())
    assert nodes["inline"].inline and not nodes["src"].inline
    assert {tuple(tags) for tags in nodes["pump"].tagsets} == {("START",), ("STOP",)}
    # the input timestamps of the inline node's calls are the source's packet timestamps
    assert [timestamp for _, _, timestamp, _ in calls(nodes["inline"])] == [0, 1, 2, 3, 4]
    assert trace.error is None and trace.failed_node is None
    assert not any(n.cancelled or n.error for n in trace.nodes)


async def test_untraced_runs_keep_the_plain_node_class() -> None:
    """No trace: the per-packet paths (emit, inline process) are the untouched NodeRun ones."""
    run = start_run(MIXED, {"log": Probe()}, {"SCRIPT": VALUES, "START": True})
    await collect(run)
    await run.aclose()
    assert run.trace is None
    assert {type(nr) for nr in run._nodes} == {NodeRun}
    assert all(nr.trace is None for nr in run._nodes)


# --- times ----------------------------------------------------------------------------------------


async def test_lifecycle_times_are_ordered_and_inside_the_run() -> None:
    trace, _, _, error = await traced(MIXED, {"SCRIPT": VALUES, "START": True})
    assert error is None and trace.done
    for node in trace.nodes:
        assert trace.start_ns <= node.open_start <= node.open_end <= node.close_start <= node.close_end <= trace.end_ns, node.name
        previous_end = node.open_end
        for start, duration, _, _ in calls(node):
            assert duration >= 0
            assert previous_end <= start, f"{node.name}: calls overlap or start before open() returned"
            previous_end = start + duration
        assert previous_end <= node.close_start, node.name
        emit_times = list(node.emits_recorded[0::2])
        assert emit_times == sorted(emit_times)
        assert all(node.open_end <= t <= node.close_start for t in emit_times), node.name
        # a node closes once its spawned tasks are done
        assert all(node.open_end <= t <= node.close_start for t in node.tasks), node.name
    (pump_task_start, pump_task_end) = by_name(trace)["pump"].tasks
    ((start_call, start_duration, _, _), (stop_call, _, _, _)) = calls(by_name(trace)["pump"])
    assert start_call <= pump_task_start <= start_call + start_duration  # spawned by the START call
    assert stop_call <= pump_task_end  # ends after the STOP call told it to stop


async def test_inline_calls_are_timed_inside_the_senders_call() -> None:
    """The inline node runs in the source's emit(): each of its calls lies within the source's
    one process() call, and right after the source's emit of that packet."""
    trace, _, _, error = await traced(MIXED, {"SCRIPT": VALUES, "START": True})
    assert error is None
    nodes = by_name(trace)
    ((src_start, src_duration, _, _),) = calls(nodes["src"])
    inline_calls = calls(nodes["inline"])
    assert len(inline_calls) == 5
    src_emits = list(nodes["src"].emits_recorded[0::2])
    for (start, duration, _, _), emitted_at in zip(inline_calls, src_emits, strict=True):
        assert src_start <= emitted_at <= start and start + duration <= src_start + src_duration


@registry.calculator()
class TwoTasks(Calculator):
    """Spawns a task that waits for a second one, which starts later and ends first."""

    contract = Contract.of(inputs=("IN",), outputs=("OUT",))

    async def process(self, inputs: InputSet) -> None:
        started = asyncio.Event()
        finished = asyncio.Event()

        async def outer() -> None:
            started.set()
            await finished.wait()
            self.ctx.emit("OUT", "both done")

        async def inner() -> None:
            await started.wait()
            finished.set()

        self.ctx.spawn(outer())
        self.ctx.spawn(inner())


async def test_overlapping_spawned_tasks_get_lanes_of_their_own() -> None:
    graph = build(
        """
        input_stream: "IN:in"
        output_stream: "OUT:out"
        node { name: "spawner" calculator: "TwoTasks" input_stream: "IN:in" output_stream: "OUT:out" }
        """
    )
    trace, _, outputs, error = await traced(graph, {"IN": 1})
    assert error is None and outputs == [("out", "both done", 0)]
    (node,) = trace.nodes
    assert len(node.tasks) == 4 and node.summary()["tasks"] == 2
    events = check_chrome(trace)
    lanes = {e["tid"] for e in events if e["ph"] == "X" and e["name"] == "task"}
    assert lanes == {101, 102}
    threads = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert threads[101] == "spawner spawned tasks" and threads[102] == "spawner spawned tasks (2)"


@registry.calculator()
class SpanRecorder(Calculator):
    """Records two overlapping spans and a third after them (as concurrent image loads would)."""

    contract = Contract.of(inputs=("IN",), outputs=("OUT",))

    async def process(self, inputs: InputSet) -> None:
        t = time.perf_counter_ns()
        self.ctx.record_span("image", t - 3000, t - 1000, {"source": "data", "bytes": 10})
        self.ctx.record_span("image", t - 2000, t, {"source": "http", "bytes": 20})
        self.ctx.record_span("check", t, t + 500)
        self.ctx.emit("OUT", "done", inputs.timestamp)


SPAN_GRAPH = """
    input_stream: "IN:in"
    output_stream: "OUT:out"
    node { name: "rec" calculator: "SpanRecorder" input_stream: "IN:in" output_stream: "OUT:out" }
"""


async def test_recorded_spans_get_lanes_of_their_own_with_their_args() -> None:
    trace, _, outputs, error = await traced(build(SPAN_GRAPH), {"IN": 1})
    assert error is None and outputs == [("out", "done", 0)]
    (node,) = trace.nodes
    assert node.summary()["spans"] == {"image": 2, "check": 1}
    events = check_chrome(trace)  # overlapping spans on one thread would fail its nesting check
    spans = [e for e in events if e["ph"] == "X" and e["cat"] == "span"]
    assert sorted(e["name"] for e in spans) == ["check", "image", "image"]
    assert {e["tid"] for e in spans} == {101, 102}  # the node has no spawned tasks: its span lanes follow it
    assert sorted(e["args"]["bytes"] for e in spans if e["name"] == "image") == [10, 20]
    threads = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert threads[101] == "rec spans" and threads[102] == "rec spans (2)"


async def test_an_untraced_run_ignores_recorded_spans() -> None:
    run = start_run(build(SPAN_GRAPH), {"log": Probe()}, {"IN": 1})
    assert await collect(run) == [("out", "done", 0)]
    await run.aclose()


# --- failures -------------------------------------------------------------------------------------


async def test_a_failing_node_is_named_and_every_node_still_closes() -> None:
    done: list[Trace] = []
    trace = Trace()
    trace.on_done.append(done.append)
    # "boom" fails the AddOne node once the pump's task is running (and waiting forever)
    run = start_run(
        FAN, {"log": Probe()}, {"SCRIPT": [("emit", 1, None), ("wait", "pumped"), ("emit", "boom", None)], "START": True}, trace=trace
    )
    with pytest.raises(ValueError, match="boom in AddOne"):
        await collect(run)
    async with asyncio.timeout(HANG_GUARD_S):
        await run.aclose()
    assert done == [trace] and trace.done
    assert (trace.error, trace.failed_node) == ("ValueError", "add")
    nodes = by_name(trace)
    assert nodes["add"].error == "ValueError"
    assert nodes["add"].calls == 2 and nodes["add"].packets_in == {"IN": 2} and nodes["add"].packets_out == {"OUT": 1}
    assert nodes["pump"].cancelled and nodes["pump"].error is None
    (task_start, task_end) = nodes["pump"].tasks  # cancelled while the node closed
    assert nodes["pump"].open_end <= task_start and nodes["pump"].close_start <= task_end <= nodes["pump"].close_end
    for node in trace.nodes:  # every node opened and closed, also the cancelled ones
        assert 0 < node.open_start <= node.open_end <= node.close_start <= node.close_end <= trace.end_ns
    events = check_chrome(trace)
    (run_event,) = [e for e in events if e["ph"] == "X" and e["name"] == "run"]
    assert run_event["args"]["error"] == "ValueError" and run_event["args"]["failed_node"] == "add"
    summary = {n["node"]: n for n in trace.summary()["nodes"]}
    assert summary["add"]["error"] == "ValueError" and summary["pump"]["cancelled"] is True


async def test_an_inline_node_that_breaks_its_promise_is_named() -> None:
    trace, _, _, error = await traced(inline_graph("InlineButAwaits"), {"SCRIPT": [1]})
    assert isinstance(error, RuntimeError)
    assert (trace.error, trace.failed_node) == ("RuntimeError", "inline")
    assert by_name(trace)["inline"].calls == 1  # the call that awaited is recorded too
    check_chrome(trace)


async def test_the_trace_holds_no_packet_values() -> None:
    secret = "4111-1111-1111-1111"
    trace, _, outputs, error = await traced(
        build(
            """
            input_stream: "SCRIPT:script"
            output_stream: "OUT:numbers"
            node { name: "src" calculator: "Script" input_stream: "SCRIPT:script" output_stream: "OUT:numbers"
                   input_side_packet: "LOG:log" }
            """
        ),
        {"SCRIPT": [("emit", secret, None)]},
    )
    assert error is None and outputs == [("numbers", secret, 0)]
    text = json.dumps([trace.chrome(), trace.summary()])
    assert secret not in text


# --- export -------------------------------------------------------------------------------------


def check_chrome(trace: Trace) -> list[dict[str, Any]]:
    """The Chrome trace round-trips through JSON and is well formed: every event names its
    phase, process and thread; every thread is named; X spans on one thread nest."""
    exported = trace.chrome()
    assert json.loads(json.dumps(exported)) == exported
    assert exported["displayTimeUnit"] == "ms" and exported["otherData"]["trace_id"] == trace.id
    events = exported["traceEvents"]
    assert all({"ph", "pid", "tid", "name"} <= e.keys() for e in events)
    assert {e["ph"] for e in events} <= {"M", "X", "C"}
    named = {e["tid"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {e["tid"] for e in events} == named
    assert {0, *(n * TID_STRIDE for n in range(1, len(trace.nodes) + 1))} <= named
    # otherData.nodes says which thread is which node (the console's lanes)
    listed = exported["otherData"]["nodes"]
    assert [(n["node"], n["calculator"]) for n in listed] == [(n.name, n.calculator) for n in trace.nodes]
    assert [n["tid"] for n in listed] == [n * TID_STRIDE for n in range(1, len(trace.nodes) + 1)]
    eps = 0.002  # µs: ts and dur are each rounded to the ns
    for tid in named:
        spans = sorted((e["ts"], -e["dur"], e["name"]) for e in events if e["ph"] == "X" and e["tid"] == tid)
        stack: list[tuple[float, float, str]] = []
        for ts, neg_dur, name in spans:
            assert ts >= 0 and -neg_dur >= 0
            while stack and ts >= stack[-1][1] - eps:
                stack.pop()
            if stack:
                assert ts + -neg_dur <= stack[-1][1] + eps, f"thread {tid}: {name} overlaps {stack[-1][2]} without nesting"
            stack.append((ts, ts + -neg_dur, name))
    return events


async def test_chrome_trace_is_well_formed_and_complete() -> None:
    trace, _, _, error = await traced(MIXED, {"SCRIPT": VALUES, "START": True}, servable="tiny", endpoint="chat/completions")
    assert error is None
    events = check_chrome(trace)
    threads = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert threads == {
        0: "graph run",
        100: "src (FlaggingEmitter)",
        200: "inline (InlineAddOne)",
        300: "pump (Pump)",
        301: "pump spawned tasks",
        400: "stopper (Stopper)",
    }
    process_name = next(e["args"]["name"] for e in events if e["name"] == "process_name")
    assert process_name == f"ovserve tiny chat/completions {trace.id}"
    spans = Counter((e["tid"], e["name"]) for e in events if e["ph"] == "X")
    for number, node in enumerate(trace.nodes, start=1):
        tid = number * TID_STRIDE
        assert spans[(tid, node.name)] == spans[(tid, "open")] == spans[(tid, "close")] == 1, node.name
        assert spans[(tid, "process")] == node.calls
        counters = [e for e in events if e["ph"] == "C" and e["tid"] == tid]
        assert len(counters) == node.emits
        if counters:
            assert counters[-1]["args"] == node.packets_out
    assert spans[(301, "task")] == 1 and sum(n for (_, name), n in spans.items() if name == "task") == 1
    process_events = [e for e in events if e["name"] == "process" and e["tid"] == 200]
    assert [e["args"] for e in process_events] == [{"timestamp": ts, "inputs": ["IN"]} for ts in range(5)]
    assert {e["cat"] for e in process_events} == {"inline"}
    assert {e["cat"] for e in events if e["name"] == "process" and e["tid"] == 100} == {"own_task"}
    (run_event,) = [e for e in events if e["ph"] == "X" and e["name"] == "run"]
    assert run_event["ts"] == 0 and run_event["args"]["complete"] is True
    assert max(e["ts"] + e.get("dur", 0) for e in events if e["ph"] in "XC") <= run_event["dur"] + 0.002
    info = trace.info()
    assert info["servable"] == "tiny" and info["complete"] and info["duration_ms"] is not None


async def test_records_beyond_the_limit_are_counted_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graphs.trace, "MAX_RECORDS_PER_NODE", 2)
    trace, _, _, error = await traced(MIXED, {"SCRIPT": VALUES, "START": True})
    assert error is None
    inline = by_name(trace)["inline"]
    assert inline.calls == 5 and inline.packets_in == {"IN": 5} and len(calls(inline)) == 2
    exported = trace.chrome()
    kept = sum(len(n.calls_recorded) // 4 + len(n.emits_recorded) // 2 for n in trace.nodes)
    assert exported["otherData"]["events_dropped"] == sum(n.calls + n.emits for n in trace.nodes) - kept > 0
    check_chrome(trace)


async def test_a_trace_records_one_run_only() -> None:
    trace, _, _, _ = await traced(MIXED, {"SCRIPT": VALUES, "START": True})
    with pytest.raises(RuntimeError, match="already recorded a run"):
        start_run(MIXED, {"log": Probe()}, {}, trace=trace)

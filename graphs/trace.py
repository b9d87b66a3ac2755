"""Per-run traces: where the time of one graph run went, node by node.

`start_run(..., trace=Trace())` makes the runner record, for every node, when open() and
close() ran, every process() call (start, duration, input timestamp, the input tags in the set;
inline calculators too, in the sender's turn), the packets it took per input tag and emitted per
output tag, the tasks it spawned (start, end), the spans its calculator recorded
(`ctx.record_span`, e.g. each image load), and the run's start, end and failure. Only names,
times and counts: never a packet's value. Without a trace the runner records nothing and allocates nothing.

`chrome()` exports the Chrome Trace Event Format (opens in ui.perfetto.dev and
chrome://tracing): one thread per node, "X" spans for open/process/close inside one span per
node lifetime, spawned tasks and recorded spans on threads of their own below it, and a "C" counter of packets out
per node; `otherData.nodes` names each node's thread. `summary()` is the same in numbers.
"""

from __future__ import annotations

import secrets
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from graphs.calculator import InputSet

# Individual process() calls and emits kept per node; beyond this only the totals grow (a
# 4k-token generation stays well under it; a trace is bounded whatever a request asks for).
MAX_RECORDS_PER_NODE = 20_000
# Chrome trace thread ids: node i (from 1) is i * TID_STRIDE, its spawned-task lanes follow it.
TID_STRIDE = 100

_now = time.perf_counter_ns


class NodeTrace:
    """What one node did in one run. Times are perf_counter_ns() values (0: did not happen)."""

    __slots__ = (
        "name",
        "calculator",
        "inline",
        "open_start",
        "open_end",
        "close_start",
        "close_end",
        "process_ns",
        "process_max_ns",
        "calls_recorded",
        "emits_recorded",
        "tagsets",
        "tagset_calls",
        "out_tags",
        "out_counts",
        "tasks",
        "spans",
        "error",
        "cancelled",
    )

    def __init__(self, name: str, calculator: str, inline: bool) -> None:
        self.name = name
        self.calculator = calculator
        self.inline = inline
        self.open_start = self.open_end = self.close_start = self.close_end = 0
        self.process_ns = 0
        self.process_max_ns = 0
        self.calls_recorded = array("q")  # start, duration, input timestamp, tag set id; per call
        self.emits_recorded = array("q")  # time, output tag id; per emitted packet
        self.tagsets: dict[tuple[str, ...], int] = {}  # the input tags of a call -> id
        self.tagset_calls: list[int] = []  # by tag set id: calls with those inputs
        self.out_tags: dict[str, int] = {}  # output tag -> id
        self.out_counts: list[int] = []  # by output tag id: packets emitted
        self.tasks = array("q")  # start, end; per task the node spawned (e.g. the LLM node's generation)
        self.spans: list[tuple[int, int, str, dict[str, Any] | None]] = []  # recorded by the calculator (record_span)
        self.error: str | None = None  # the exception type that ended the node
        self.cancelled = False

    # Called per packet while tracing: kept to a few dict/array operations each.
    def processed(self, start: int, inputs: InputSet) -> None:
        """The process() call on `inputs` that started at `start` (perf_counter_ns) has returned
        or raised."""
        duration = _now() - start
        self.process_ns += duration
        if duration > self.process_max_ns:
            self.process_max_ns = duration
        key = tuple(inputs._packets)
        tagset = self.tagsets.get(key)
        if tagset is None:
            tagset = self.tagsets[key] = len(self.tagset_calls)
            self.tagset_calls.append(0)
        self.tagset_calls[tagset] += 1
        recorded = self.calls_recorded
        if len(recorded) < 4 * MAX_RECORDS_PER_NODE:
            recorded.extend((start, duration, inputs.timestamp, tagset))

    def emitted(self, tag: str, at: int) -> None:
        tag_id = self.out_tags.get(tag)
        if tag_id is None:
            tag_id = self.out_tags[tag] = len(self.out_counts)
            self.out_counts.append(0)
        self.out_counts[tag_id] += 1
        recorded = self.emits_recorded
        if len(recorded) < 2 * MAX_RECORDS_PER_NODE:
            recorded.extend((at, tag_id))

    def spanned(self, name: str, start: int, end: int, args: Mapping[str, Any] | None) -> None:
        if len(self.spans) < MAX_RECORDS_PER_NODE:
            self.spans.append((start, end, name, dict(args) if args else None))

    @property
    def calls(self) -> int:
        """process() calls."""
        return sum(self.tagset_calls)

    @property
    def emits(self) -> int:
        return sum(self.out_counts)

    @property
    def packets_in(self) -> dict[str, int]:
        """Packets taken per input tag (each call takes one packet per tag in its input set)."""
        counts: dict[str, int] = {}
        for tags, tagset in self.tagsets.items():
            for tag in tags:
                counts[tag] = counts.get(tag, 0) + self.tagset_calls[tagset]
        return counts

    @property
    def packets_out(self) -> dict[str, int]:
        return {tag: self.out_counts[tag_id] for tag, tag_id in self.out_tags.items()}

    def summary(self) -> dict[str, Any]:
        return {
            "node": self.name,
            "calculator": self.calculator,
            "inline": self.inline,
            "open_ms": _ms(self.open_end - self.open_start) if self.open_end else None,
            "process_calls": self.calls,
            "process_ms": _ms(self.process_ns),
            "process_max_ms": _ms(self.process_max_ns),
            "close_ms": _ms(self.close_end - self.close_start) if self.close_end else None,
            "packets_in": self.packets_in,
            "packets_out": self.packets_out,
            "tasks": len(self.tasks) // 2,
            "tasks_ms": _ms(sum(self.tasks[i + 1] - self.tasks[i] for i in range(0, len(self.tasks), 2))),
            "spans": dict(Counter(span[2] for span in self.spans)),  # recorded spans by name
            "error": self.error,
            "cancelled": self.cancelled,
        }


def _ms(ns: int) -> float:
    return round(ns / 1e6, 3)


# A lane item: start, stop (perf_counter_ns), event name, category, args.
_LaneItem = tuple[int, int, str, str, dict[str, Any] | None]


def _lanes(
    items: list[_LaneItem], first_tid: int, most: int, label: str, us: Callable[[int], float], dur: Callable[[int], float]
) -> tuple[list[dict[str, Any]], int]:
    """Items as "X" spans on threads of their own ("lanes" from `first_tid`, at most `most`), so
    that overlapping ones never share a thread: a node's spawned tasks outlive the process() call
    that started them, and its recorded spans (e.g. concurrent image loads) overlap each other.
    Returns the events and the number of lanes used."""
    events: list[dict[str, Any]] = []
    lanes: list[int] = []  # end time of the last item on each lane
    for start, stop, name, cat, args in sorted(items, key=lambda item: item[:2]):
        lane = next((i for i, busy_until in enumerate(lanes) if busy_until <= start), None)
        if lane is None:
            lane = min(len(lanes), most - 1)
            if lane == len(lanes):
                lanes.append(0)
                lane_tid = first_tid + lane
                thread = label + (f" ({lane + 1})" if lane else "")
                events.append({"ph": "M", "pid": 1, "tid": lane_tid, "name": "thread_name", "args": {"name": thread}})
                events.append({"ph": "M", "pid": 1, "tid": lane_tid, "name": "thread_sort_index", "args": {"sort_index": lane_tid}})
        lanes[lane] = max(lanes[lane], stop)
        event = {"ph": "X", "pid": 1, "tid": first_tid + lane, "name": name, "cat": cat, "ts": us(start), "dur": dur(stop - start)}
        if args:
            event["args"] = args
        events.append(event)
    return events, len(lanes)


def _node_lanes(node: NodeTrace, tid: int, us: Callable[[int], float], dur: Callable[[int], float]) -> list[dict[str, Any]]:
    """The node's spawned tasks, then its recorded spans, on lanes below its thread."""
    tasks: list[_LaneItem] = [(node.tasks[i], node.tasks[i + 1], "task", "spawned", None) for i in range(0, len(node.tasks), 2)]
    events, used = _lanes(tasks, tid + 1, TID_STRIDE - 2, f"{node.name} spawned tasks", us, dur)
    spans: list[_LaneItem] = [(start, stop, name, "span", args) for start, stop, name, args in node.spans]
    more, _ = _lanes(spans, tid + 1 + used, max(1, TID_STRIDE - 2 - used), f"{node.name} spans", us, dur)
    return events + more


class Trace:
    """One graph run's trace. Create it, hand it to `start_run`; it is complete once every node
    of the run has finished (`done`), which also calls the `on_done` callbacks."""

    def __init__(self, trace_id: str | None = None, **labels: str) -> None:
        self.id = trace_id or secrets.token_hex(8)
        self.labels = labels  # names only (servable, endpoint): shown in the export
        self.nodes: list[NodeTrace] = []
        self.started_at = 0.0  # wall clock (time.time()) at the run's start
        self.start_ns = 0
        self.end_ns = 0
        self.error: str | None = None  # the exception type that failed the run
        self.failed_node: str | None = None
        self.on_done: list[Callable[[Trace], None]] = []
        self._running = 0

    # -- recording (called by graphs.runner) ----------------------------------------------
    def _start(self, nodes: Iterable[tuple[str, str, bool]]) -> list[NodeTrace]:
        if self.start_ns:
            raise RuntimeError(f"trace {self.id} already recorded a run")
        self.started_at = time.time()
        self.start_ns = _now()
        self.nodes = [NodeTrace(name, calculator, inline) for name, calculator, inline in nodes]
        self._running = len(self.nodes)
        if not self._running:
            self._finish()
        return self.nodes

    def _failed(self, error: BaseException, node: str | None) -> None:
        if self.error is None:
            self.error = type(error).__name__
            self.failed_node = node

    def _node_finished(self) -> None:
        self._running -= 1
        if self._running == 0:
            self._finish()

    def _finish(self) -> None:
        self.end_ns = _now()
        for callback in self.on_done:
            callback(self)

    # -- reading --------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.end_ns != 0

    @property
    def duration_ms(self) -> float | None:
        return _ms(self.end_ns - self.start_ns) if self.done else None

    def info(self) -> dict[str, Any]:
        """One line of a trace listing."""
        return {
            "id": self.id,
            **self.labels,
            "started_at": round(self.started_at, 6),
            "duration_ms": self.duration_ms,
            "complete": self.done,
            "error": self.error,
        }

    def summary(self) -> dict[str, Any]:
        return {**self.info(), "failed_node": self.failed_node, "nodes": [node.summary() for node in self.nodes]}

    def chrome(self) -> dict[str, Any]:
        """Chrome Trace Event Format (JSON object form): `ts`/`dur` in µs from the run's start."""
        origin = self.start_ns
        end = self.end_ns or _now()

        def us(ns: int) -> float:
            return round((ns - origin) / 1000, 3)

        def dur(ns: int) -> float:
            return round(ns / 1000, 3)

        title = " ".join(["ovserve", *self.labels.values(), self.id])
        events: list[dict[str, Any]] = [
            {"ph": "M", "pid": 1, "tid": 0, "name": "process_name", "args": {"name": title}},
            {"ph": "M", "pid": 1, "tid": 0, "name": "thread_name", "args": {"name": "graph run"}},
            {"ph": "M", "pid": 1, "tid": 0, "name": "thread_sort_index", "args": {"sort_index": 0}},
            {
                "ph": "X",
                "pid": 1,
                "tid": 0,
                "name": "run",
                "cat": "run",
                "ts": 0.0,
                "dur": dur(end - origin),
                "args": {**self.labels, "error": self.error, "failed_node": self.failed_node, "complete": self.done},
            },
        ]
        for number, node in enumerate(self.nodes, start=1):
            tid = number * TID_STRIDE
            kind = "inline" if node.inline else "own_task"  # where its process() calls ran
            events.append({"ph": "M", "pid": 1, "tid": tid, "name": "thread_name", "args": {"name": f"{node.name} ({node.calculator})"}})
            events.append({"ph": "M", "pid": 1, "tid": tid, "name": "thread_sort_index", "args": {"sort_index": tid}})
            first = node.open_start or (node.calls_recorded[0] if node.calls_recorded else 0)
            if first:
                last = node.close_end or end
                summary = node.summary()
                args = {k: summary[k] for k in ("calculator", "inline", "process_calls", "packets_in", "packets_out", "error", "cancelled")}
                events.append(
                    {
                        "ph": "X",
                        "pid": 1,
                        "tid": tid,
                        "name": node.name,
                        "cat": "node",
                        "ts": us(first),
                        "dur": dur(last - first),
                        "args": args,
                    }
                )
            if node.open_start:
                open_end = node.open_end or end
                events.append(
                    {
                        "ph": "X",
                        "pid": 1,
                        "tid": tid,
                        "name": "open",
                        "cat": "open",
                        "ts": us(node.open_start),
                        "dur": dur(open_end - node.open_start),
                    }
                )
            tagsets = {v: list(k) for k, v in node.tagsets.items()}
            calls = node.calls_recorded
            for i in range(0, len(calls), 4):
                start, duration, timestamp, tagset = calls[i : i + 4]
                events.append(
                    {
                        "ph": "X",
                        "pid": 1,
                        "tid": tid,
                        "name": "process",
                        "cat": kind,
                        "ts": us(start),
                        "dur": dur(duration),
                        "args": {"timestamp": timestamp, "inputs": tagsets[tagset]},
                    }
                )
            if node.close_start:
                close_end = node.close_end or end
                events.append(
                    {
                        "ph": "X",
                        "pid": 1,
                        "tid": tid,
                        "name": "close",
                        "cat": "close",
                        "ts": us(node.close_start),
                        "dur": dur(close_end - node.close_start),
                        "args": {"cancelled": node.cancelled, "error": node.error},
                    }
                )
            events += _node_lanes(node, tid, us, dur)
            out_tags = {v: k for k, v in node.out_tags.items()}
            counts = dict.fromkeys(node.out_tags, 0)
            emits = node.emits_recorded
            for i in range(0, len(emits), 2):
                counts[out_tags[emits[i + 1]]] += 1
                events.append(
                    {"ph": "C", "pid": 1, "tid": tid, "name": f"{node.name} packets out", "ts": us(emits[i]), "args": dict(counts)}
                )
        dropped = sum(n.calls - len(n.calls_recorded) // 4 + n.emits - len(n.emits_recorded) // 2 for n in self.nodes)
        return {
            "traceEvents": events,
            "displayTimeUnit": "ms",
            "otherData": {
                "trace_id": self.id,
                **self.labels,
                "started_at": self.started_at,
                "complete": self.done,
                "error": self.error,
                "events_dropped": dropped,
                # Which thread is which node, by the node's name in the runner (the console's lanes).
                "nodes": [
                    {"node": node.name, "calculator": node.calculator, "tid": number * TID_STRIDE}
                    for number, node in enumerate(self.nodes, start=1)
                ],
            },
        }

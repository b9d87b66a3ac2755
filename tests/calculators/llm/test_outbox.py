"""The engine worker's Outbox: merging steps, sending urgent news at once, holding progress."""

from __future__ import annotations

from calculators.llm.engine.outbox import Outbox
from calculators.llm.engine.protocol import Finish, Status

RUN, FIN = Status.RUNNING, Status.FINISHED


def test_interval_zero_sends_every_step() -> None:
    box = Outbox(0.0)
    box.add([[1, RUN, [[0, [5], Finish.NONE, None]]]])
    assert box.due(now=0.0)
    assert box.take(now=0.0) == [[1, RUN, [[0, [5], Finish.NONE, None]]]]
    box.add([[1, RUN, [[0, [6], Finish.NONE, None]]]])
    assert box.due(now=0.0)


def test_first_tokens_and_endings_go_at_once_progress_waits() -> None:
    box = Outbox(0.005)
    box.add([[1, RUN, [[0, [5], Finish.NONE, None]]]])
    assert box.due(now=100.0)  # first tokens of request 1: urgent
    box.take(now=100.0)
    box.add([[1, RUN, [[0, [6], Finish.NONE, None]]]])
    assert not box.due(now=100.001)  # plain progress waits for the interval
    box.add([[1, RUN, [[0, [7, 8], Finish.NONE, None]]]])
    assert box.due(now=100.006)
    assert box.take(now=100.006) == [[1, RUN, [[0, [6, 7, 8], Finish.NONE, None]]]]  # merged in order
    box.add([[1, FIN, [[0, [9], Finish.STOP, None]]]])
    assert box.due(now=100.007)  # the end: urgent
    assert box.take(now=100.007) == [[1, FIN, [[0, [9], Finish.STOP, None]]]]
    assert not box.due(now=200.0)  # nothing pending


def test_merge_keeps_sequences_apart_and_the_last_status() -> None:
    box = Outbox(1.0)
    box.add([[1, RUN, [[0, [1], Finish.NONE, None], [1, [2], Finish.NONE, None]]]])
    box.take(now=0.0)
    box.add([[1, RUN, [[0, [3], Finish.NONE, None]]], [2, RUN, []]])
    box.add([[1, FIN, [[0, [4], Finish.LENGTH, None], [1, [5], Finish.STOP, None]]]])
    updates = box.take(now=0.1)
    assert updates[0] == [1, FIN, [[0, [3, 4], Finish.LENGTH, None], [1, [5], Finish.STOP, None]]]


def test_errors_ride_along_and_dropped_requests_vanish() -> None:
    box = Outbox(1.0)
    box.add([[1, RUN, [[0, [1], Finish.NONE, None]]], [2, RUN, [[0, [9], Finish.NONE, None]]]])
    box.drop(2)
    box.add([[1, Status.FAILED, [], "boom"]])
    assert box.take(now=0.0) == [[1, Status.FAILED, [[0, [1], Finish.NONE, None]], "boom"]]

"""The engine worker's Outbox: merging steps, sending urgent news at once, holding progress."""

from __future__ import annotations

from calculators.llm.engine.outbox import Outbox
from calculators.llm.engine.protocol import Finish, SequenceDelta, Status, Update

RUN, FIN = Status.RUNNING, Status.FINISHED


def up(request_id: int, status: Status, *outputs: tuple[int, list[int], Finish]) -> Update:
    """An update with one delta per (index, token ids, finish), no logprobs."""
    return Update(request_id, status, [SequenceDelta(index, ids, finish) for index, ids, finish in outputs])


def test_interval_zero_sends_every_step() -> None:
    box = Outbox(0.0)
    box.add([up(1, RUN, (0, [5], Finish.NONE))])
    assert box.due(now=0.0)
    assert box.take(now=0.0) == [up(1, RUN, (0, [5], Finish.NONE))]
    box.add([up(1, RUN, (0, [6], Finish.NONE))])
    assert box.due(now=0.0)


def test_first_tokens_and_endings_go_at_once_progress_waits() -> None:
    box = Outbox(0.005)
    box.add([up(1, RUN, (0, [5], Finish.NONE))])
    assert box.due(now=100.0)  # first tokens of request 1: urgent
    box.take(now=100.0)
    box.add([up(1, RUN, (0, [6], Finish.NONE))])
    assert not box.due(now=100.001)  # plain progress waits for the interval
    box.add([up(1, RUN, (0, [7, 8], Finish.NONE))])
    assert box.due(now=100.006)
    assert box.take(now=100.006) == [up(1, RUN, (0, [6, 7, 8], Finish.NONE))]  # merged in order
    box.add([up(1, FIN, (0, [9], Finish.STOP))])
    assert box.due(now=100.007)  # the end: urgent
    assert box.take(now=100.007) == [up(1, FIN, (0, [9], Finish.STOP))]
    assert not box.due(now=200.0)  # nothing pending


def test_merge_keeps_sequences_apart_and_the_last_status() -> None:
    box = Outbox(1.0)
    box.add([up(1, RUN, (0, [1], Finish.NONE), (1, [2], Finish.NONE))])
    box.take(now=0.0)
    box.add([up(1, RUN, (0, [3], Finish.NONE)), up(2, RUN)])
    box.add([up(1, FIN, (0, [4], Finish.LENGTH), (1, [5], Finish.STOP))])
    updates = box.take(now=0.1)
    assert updates[0] == up(1, FIN, (0, [3, 4], Finish.LENGTH), (1, [5], Finish.STOP))


def test_logprobs_merge_alongside_their_tokens() -> None:
    box = Outbox(1.0)
    box.add([Update(1, RUN, [SequenceDelta(0, [1], Finish.NONE, [-0.5])])])
    box.add([Update(1, RUN, [SequenceDelta(0, [2, 3], Finish.NONE, [-0.25, -1.0])])])
    assert box.take(now=0.0) == [Update(1, RUN, [SequenceDelta(0, [1, 2, 3], Finish.NONE, [-0.5, -0.25, -1.0])])]


def test_failures_ride_along_and_dropped_requests_vanish() -> None:
    # A failure carries no text on the wire (the worker logs why; the client answers with a
    # stable message): it rides along with the tokens merged before it.
    box = Outbox(1.0)
    box.add([up(1, RUN, (0, [1], Finish.NONE)), up(2, RUN, (0, [9], Finish.NONE))])
    box.drop(2)
    box.add([up(1, Status.FAILED)])
    assert box.take(now=0.0) == [up(1, Status.FAILED, (0, [1], Finish.NONE))]


def test_merging_leaves_the_added_updates_untouched() -> None:
    # A lone update goes out as it came; merging copies, so no list of an update already built
    # (or already sent) changes.
    box = Outbox(1.0)
    first = up(1, RUN, (0, [1], Finish.NONE))
    box.add([first])
    assert box.take(now=0.0)[0] is first
    box.add([first, up(1, RUN, (0, [2], Finish.NONE))])
    assert box.take(now=0.1) == [up(1, RUN, (0, [1, 2], Finish.NONE))]
    assert first == up(1, RUN, (0, [1], Finish.NONE))

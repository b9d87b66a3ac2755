"""serving.admission: slots, the FIFO queue, 429 when full, waiters that leave, timeouts."""

from __future__ import annotations

import asyncio

import pytest

from graphs.errors import UnavailableError
from serving.admission import Admission, RequestTimeoutError, TooManyRequestsError
from serving.errors import status_of


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_runs_waits_then_refuses_and_hands_slots_over_in_order() -> None:
    async def main() -> None:
        gate = Admission(max_running=2, max_queued=2)
        await gate.acquire()
        await gate.acquire()
        order: list[int] = []

        async def wait(i: int) -> None:
            await gate.acquire()
            order.append(i)

        waiters = [asyncio.ensure_future(wait(i)) for i in range(2)]
        await _settle()
        assert (gate.running, gate.queued) == (2, 2)
        with pytest.raises(TooManyRequestsError) as refused:
            await gate.acquire()
        assert status_of(refused.value) == 429 and gate.rejected["queue_full"] == 1
        gate.release()
        gate.release()
        await asyncio.gather(*waiters)
        assert order == [0, 1] and (gate.running, gate.queued) == (2, 0)
        gate.release()
        gate.release()
        assert (gate.running, gate.queued) == (0, 0)

    asyncio.run(main())


def test_a_waiter_that_leaves_frees_its_place() -> None:
    async def main() -> None:
        gate = Admission(max_running=1, max_queued=1)
        await gate.acquire()
        leaving = asyncio.ensure_future(gate.acquire())
        await _settle()
        assert gate.queued == 1
        leaving.cancel()
        await asyncio.gather(leaving, return_exceptions=True)
        assert gate.queued == 0
        staying = asyncio.ensure_future(gate.acquire())  # the place is free again
        await _settle()
        gate.release()
        await staying
        assert (gate.running, gate.queued) == (1, 0)
        gate.release()
        assert gate.running == 0

    asyncio.run(main())


def test_a_slot_handed_to_a_waiter_cancelled_meanwhile_passes_on() -> None:
    async def main() -> None:
        gate = Admission(max_running=1, max_queued=2)
        await gate.acquire()
        first = asyncio.ensure_future(gate.acquire())
        second = asyncio.ensure_future(gate.acquire())
        await _settle()
        gate.release()  # hands the slot to `first`...
        first.cancel()  # ...which is cancelled before it resumes
        await asyncio.gather(first, return_exceptions=True)
        await second
        assert (gate.running, gate.queued) == (1, 0)
        gate.release()
        assert gate.running == 0

    asyncio.run(main())


def test_waiting_past_the_deadline_is_a_504() -> None:
    async def main() -> None:
        gate = Admission(max_running=1, max_queued=1, timeout_s=0.01)
        await gate.acquire()
        with pytest.raises(RequestTimeoutError) as late:
            await gate.acquire(gate.deadline())
        assert status_of(late.value) == 504 and gate.rejected["timeout"] == 1
        assert (gate.running, gate.queued) == (1, 0)

    asyncio.run(main())


def test_limits_cancel_a_body_that_runs_too_long() -> None:
    async def main() -> None:
        gate = Admission(max_running=1, max_queued=0, timeout_s=0.01)
        with pytest.raises(RequestTimeoutError):
            async with gate.limits(gate.deadline()):
                await asyncio.Event().wait()
        assert gate.running == 0

    asyncio.run(main())


def test_refuse_waiting_answers_every_waiter_and_later_arrivals() -> None:
    async def main() -> None:
        gate = Admission(max_running=1, max_queued=5)
        await gate.acquire()
        waiters = [asyncio.ensure_future(gate.acquire()) for _ in range(3)]
        await _settle()
        gate.refuse_waiting(UnavailableError("shutting down"))
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert all(isinstance(r, UnavailableError) for r in results)
        assert (gate.running, gate.queued) == (1, 0)
        with pytest.raises(UnavailableError):
            await gate.acquire()  # would have to wait
        gate.release()
        await gate.acquire()  # a free slot still runs
        gate.release()
        assert (gate.running, gate.queued) == (0, 0)

    asyncio.run(main())


def test_a_release_between_a_cancellation_and_its_handling_is_counted_once() -> None:
    """Task.cancel() cancels the awaited future at once; a release() that runs before the task
    handles its CancelledError skips (and pops) that waiter. Found by tests/e2e/test_disconnects.py:
    the waiter then failed with a ValueError and the queue length stayed at 1."""

    async def main() -> None:
        gate = Admission(max_running=1, max_queued=2)
        await gate.acquire()
        leaving = asyncio.ensure_future(gate.acquire())
        staying = asyncio.ensure_future(gate.acquire())
        await _settle()
        leaving.cancel()
        gate.release()  # pops the cancelled waiter, hands the slot to `staying`
        (result,) = await asyncio.gather(leaving, return_exceptions=True)
        assert isinstance(result, asyncio.CancelledError), result
        await staying
        assert (gate.running, gate.queued) == (1, 0)
        gate.release()
        assert (gate.running, gate.queued) == (0, 0)

    asyncio.run(main())


def test_flags_defaults_and_bad_values() -> None:
    from serving.cli import build_parser, settings_from_args

    parser = build_parser()
    settings = settings_from_args(parser.parse_args(["--model_path", "m"]))
    assert (settings.max_concurrent_requests, settings.max_queued_requests, settings.request_timeout) == (512, 1024, 600.0)
    args = ["--model_path", "m", "--max_concurrent_requests", "8", "--max_queued_requests", "0", "--request_timeout", "0"]
    settings = settings_from_args(parser.parse_args([*args, "--best_of_limit", "4"]))
    assert (settings.max_concurrent_requests, settings.max_queued_requests, settings.request_timeout) == (8, 0, 0.0)
    assert settings.llm.node_options()["best_of_limit"] == 4
    bad_values = (
        ["--max_concurrent_requests", "0"],
        ["--max_queued_requests", "-1"],
        ["--request_timeout", "nan"],
        ["--best_of_limit", "0"],
    )
    for bad in bad_values:
        with pytest.raises(SystemExit):
            parser.parse_args(["--model_path", "m", *bad])

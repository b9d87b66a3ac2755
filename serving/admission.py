"""Admission control: how many graph runs the server takes at once, and how many may wait.

One `Admission` per server sits in front of every route that runs a graph (OpenAI chat,
completions, embeddings, rerank; KServe REST infer; gRPC ModelInfer and each ModelStreamInfer
request). A request runs at once while fewer than `--max_concurrent_requests` run; otherwise it
waits in a FIFO queue while fewer than `--max_queued_requests` wait; otherwise it is refused at
once with a 429 (`Retry-After`; gRPC: RESOURCE_EXHAUSTED). A waiter whose client goes away (its
handler is cancelled) leaves the queue; a waiter whose `--request_timeout` passes gets a 504.

Why per server and not per servable: the slot is taken before the request body is read (the
model name is in the body), so a waiting request holds no more than aiohttp's read buffer, and
the limits bound the server's memory as a whole, whatever the number of models. The engine's own
batch (`max_num_seqs`) is the per-model limit; the defaults here sit well above it so that they
never throttle a healthy server, only a flood.

Cost: O(1) per request (a counter, and a future only for a request that has to wait); nothing per
token.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from graphs.errors import OverloadedError, OvserveError

DEFAULT_MAX_CONCURRENT = 512
DEFAULT_MAX_QUEUED = 1024
DEFAULT_REQUEST_TIMEOUT_S = 600.0
# Output a stream may have waiting for its client (queued in its graph run, beyond the socket's
# own buffers: the kernel's, and the transport's 64 KiB high-water mark) before the request is
# cancelled and the connection dropped: a client that stopped reading. Minutes of output for a
# slow reader (an n=1 stream makes ~250 bytes per token), so only a stalled client reaches it.
DEFAULT_MAX_UNSENT_BYTES = 4 * 2**20
# How long one send to a client may stall (the client takes none of what waits for it) before
# the connection is dropped: a stream whose last bytes, or a JSON answer that, do not fit the
# socket of a client that stopped reading would otherwise wait for it (and hold its admission
# slot) until it closes. nginx's send_timeout (60 s), same meaning: between two successful
# writes, not for the whole answer.
DEFAULT_SEND_TIMEOUT_S = 60.0
NOT_READING = "not_reading"  # the reason counted in `Admission.rejected` for such requests (both bounds)


class TooManyRequestsError(OverloadedError):
    """The admission queue is full: retry later (429, Retry-After)."""

    status = 429
    kind = "rate_limit_error"  # what OpenAI calls its 429s; SDKs retry them


class RequestTimeoutError(OvserveError):
    """The request ran (or waited) longer than --request_timeout. 504: the request was received
    in full (so not 408, which blames the client); what did not answer in time is the engine."""

    status = 504
    kind = "timeout_error"


class Admission:
    def __init__(self, max_running: int, max_queued: int, timeout_s: float = 0.0) -> None:
        self.max_running = max_running
        self.max_queued = max_queued
        self.timeout_s = timeout_s  # 0: none
        self.running = 0
        self.queued = 0  # live waiters (cancelled ones may still sit in _waiters until popped)
        self.rejected: collections.Counter[str] = collections.Counter()  # reason -> count
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.refusal: OvserveError | None = None  # set by refuse_waiting(): nobody waits any more

    def deadline(self) -> float | None:
        """The loop time by which a request arriving now must be done (None: no limit)."""
        return asyncio.get_running_loop().time() + self.timeout_s if self.timeout_s > 0 else None

    async def acquire(self, deadline: float | None = None) -> None:
        """Take a running slot, waiting in the queue if need be; raises TooManyRequestsError when
        the queue is full, RequestTimeoutError when `deadline` passes while waiting."""
        if self.running < self.max_running and not self.queued:
            self.running += 1
            return
        if self.refusal is not None:
            raise self.refusal
        if self.queued >= self.max_queued:
            self.rejected["queue_full"] += 1
            raise TooManyRequestsError(
                f"the server is at capacity ({self.running} requests running, {self.queued} waiting); retry later",
                code="too_many_requests",
            )
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.queued += 1
        try:
            async with asyncio.timeout_at(deadline):
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                if waiter.exception() is None:
                    self.release()  # the slot was handed over as we were cancelled: pass it on
                # else refused by refuse_waiting(), which did the counting
            else:
                # Cancelling the task cancelled `waiter` at once, and a release() running before
                # we got here may have popped (and skipped) it already.
                waiter.cancel()
                self.queued -= 1
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)  # O(queue), on a cancellation only
            if isinstance(exc, TimeoutError):
                raise self.timed_out() from None
            raise
        # the releaser counted us in `running` and out of `queued`

    def refuse_waiting(self, error: OvserveError) -> None:
        """From now on nobody waits: every waiter, and whoever would have to wait, gets `error`
        (on SIGTERM: a 503 at once, so that clients retry elsewhere instead of waiting out the
        drain and then being cut off). Requests that find a free slot still run."""
        self.refusal = error
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.queued -= 1
                waiter.set_exception(error)

    def timed_out(self) -> RequestTimeoutError:
        """Count a request cut short by --request_timeout (waiting or running), and its error."""
        self.rejected["timeout"] += 1
        limit = f"{self.timeout_s:g} s"
        return RequestTimeoutError(f"the request took longer than the server's limit of {limit} (--request_timeout) and was cancelled")

    def release(self) -> None:
        """Give the slot back: to the next waiter, or free."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.queued -= 1
                waiter.set_result(None)  # the slot passes straight to the next waiter
                return
        self.running -= 1

    @contextlib.asynccontextmanager
    async def slot(self, deadline: float | None = None) -> AsyncIterator[None]:
        await self.acquire(deadline)
        try:
            yield
        finally:
            self.release()

    @contextlib.asynccontextmanager
    async def within(self, deadline: float | None) -> AsyncIterator[None]:
        """The body runs within `deadline` (--request_timeout): past it, it is cancelled and
        RequestTimeoutError raised (counted)."""
        timer = asyncio.timeout_at(deadline)
        try:
            async with timer:
                yield
        except TimeoutError:
            if timer.expired():
                raise self.timed_out() from None
            raise

    @contextlib.asynccontextmanager
    async def limits(self, deadline: float | None = None) -> AsyncIterator[None]:
        """A slot (see acquire), and the body runs `within` the deadline (for front ends that
        answer once: KServe, gRPC)."""
        async with self.slot(deadline), self.within(deadline):
            yield

    def stats(self) -> dict[str, object]:
        return {
            "running": self.running,
            "queued": self.queued,
            "max_running": self.max_running,
            "max_queued": self.max_queued,
            "rejected": dict(self.rejected),
        }


ADMISSION = web.AppKey("admission", Admission)


def install(app: web.Application, max_running: int, max_queued: int, timeout_s: float) -> Admission:
    admission = app[ADMISSION] = Admission(max_running, max_queued, timeout_s)
    return admission

"""asyncio client of one engine worker process.

One reader task decodes the worker's per-step messages and hands each request's part to
that request's `RequestStream`; nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from calculators.llm.engine.base import NO_STRUCTURED_OUTPUT, VISION, WorkerSpec
from calculators.llm.engine.protocol import (
    HEADER,
    Add,
    Cancel,
    Expect,
    Fatal,
    FromWorker,
    PromptLength,
    Ready,
    Rejected,
    SequenceDelta,
    Shutdown,
    Status,
    Step,
    Telemetry,
    Update,
    decode_from_worker,
    encode,
    frame,
)
from calculators.llm.engine.vision import vision_request
from calculators.llm.engine.worker_main import worker_main
from calculators.llm.guided import GRAMMAR_KEY
from graphs.errors import EngineError, InvalidRequestError, OverloadedError, UnavailableError

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("ovserve.engine")

# Metrics' hook (see telemetry.py): the worker's step and queue durations of one message.
StepObserver = Callable[[Sequence[float], Sequence[float]], None]


@dataclass(frozen=True, slots=True)
class StepOutput:
    """What one engine step produced for one request (possibly nothing but a final status).
    The deltas are the STEP message's own (protocol.SequenceDelta), as decoded."""

    deltas: tuple[SequenceDelta, ...]
    finished: bool


def _merge(first: StepOutput, second: StepOutput) -> StepOutput:
    by_index: dict[int, SequenceDelta] = {d.index: d for d in first.deltas}
    for d in second.deltas:
        prev = by_index.get(d.index)
        if prev is None:
            by_index[d.index] = d
        else:
            logprobs = None if prev.logprobs is None and d.logprobs is None else (prev.logprobs or []) + (d.logprobs or [])
            by_index[d.index] = SequenceDelta(d.index, prev.token_ids + d.token_ids, d.finish, logprobs)
    return StepOutput(tuple(by_index.values()), second.finished)


# What a client is told when the engine fails or refuses a request. genai's own text (check
# expressions, build paths: "Check '…' failed at /home/jenkins/…") goes to the log only.
FAILED_MESSAGE = "generation failed: the engine failed while generating this request (details are in the server log)"
REFUSED_MESSAGE = (
    "the engine refused the request: its generation settings do not go together "
    "(e.g. min_tokens above max_tokens, or sampling values out of range)"
)


class MalformedMessage(UnavailableError):
    """The worker sent a frame the protocol does not describe: the stream cannot be trusted."""


class RequestStream:
    """The engine side of one request. Either iterate it (`next()`), or `listen()`: then each
    step output is handed to a callback in the engine reader's turn, with no task switch per
    step. `cancel()` stops the request."""

    def __init__(self, client: EngineClient, request_id: int) -> None:
        self._client = client
        self.request_id = request_id
        self._items: deque[StepOutput | BaseException] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._listener: Callable[[StepOutput], None] | None = None
        self._ended: asyncio.Future[None] | None = None
        self.done = False
        self.prompt_tokens = 0

    def _push(self, item: StepOutput | BaseException) -> None:
        if self._listener is not None:
            self._deliver(item)
            return
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def listen(self, on_output: Callable[[StepOutput], None]) -> asyncio.Future[None]:
        """Deliver every step output to `on_output` as it arrives. The returned future ends
        with the request: done when it finished or was cancelled, or with its error."""
        self._listener = on_output
        self._ended = asyncio.get_running_loop().create_future()
        while self._items:
            self._deliver(self._items.popleft())
        if self.done:
            self._end()
        return self._ended

    def _deliver(self, item: StepOutput | BaseException) -> None:
        assert self._listener is not None and self._ended is not None
        if self._ended.done():
            return
        if isinstance(item, BaseException):
            self.done = True
            self._ended.set_exception(item)
            return
        try:
            self._listener(item)
        except Exception as exc:  # the consumer's failure ends this request, not the reader
            self.cancel()
            if not self._ended.done():
                self._ended.set_exception(exc)
            return
        if item.finished:
            self.done = True
            self._end()

    def _end(self) -> None:
        if self._ended is not None and not self._ended.done():
            self._ended.set_result(None)

    async def next(self) -> StepOutput | None:
        """The next step output; None once the request has ended."""
        while not self._items:
            if self.done:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
            self._waiter = None
        item = self._items.popleft()
        while self._items and isinstance(item, StepOutput) and not item.finished:
            # The consumer fell behind: hand over every step that is waiting, as one.
            following = self._items[0]
            if isinstance(following, BaseException):
                break
            self._items.popleft()
            item = _merge(item, following)
        if isinstance(item, BaseException):
            self.done = True
            raise item
        if item.finished:
            self.done = True
        return item

    def cancel(self) -> None:
        """Stop generating and free the request's KV cache (idempotent)."""
        if not self.done:
            self.done = True
            self._client._cancel(self.request_id)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        self._end()


class EngineClient:
    def __init__(self, spec: WorkerSpec, servable_name: str = "") -> None:
        self.spec = spec
        self.servable_name = servable_name or os.path.basename(spec.models_path)  # for error messages
        self._reaping = asyncio.Lock()
        self.info: dict[str, Any] = {}
        self.vision = False  # the engine runs a vision-language model (VLM_CB, VLM): it takes images
        self.last_stats: dict[str, Any] = {}
        self._streams: dict[int, RequestStream] = {}
        self._ids = itertools.count(1)
        self._process: multiprocessing.process.BaseProcess | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._dead: str | None = None
        self._shutting_down = False  # aclose() asked the worker to exit: its exit is no error
        # Metrics (observe()): None while off, so nothing is done per message.
        self.observer: StepObserver | None = None
        self.received_at = 0.0  # perf_counter() when the current message came (only with an observer)
        self.on_exit: Callable[[str], None] | None = None  # called once if the worker dies unasked

    @classmethod
    async def start(cls, spec: WorkerSpec, servable_name: str = "") -> EngineClient:
        client = cls(spec, servable_name)
        await client._start()
        return client

    async def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # never fork a process running OpenVINO threads
        parent, child = ctx.Pipe(duplex=True)  # a Unix socketpair underneath
        process = ctx.Process(target=worker_main, args=(self.spec, child), name="ovserve-engine", daemon=True)
        process.start()
        child.close()
        self._process = process
        sock = socket.socket(fileno=os.dup(parent.fileno()))
        parent.close()
        reader, self._writer = await asyncio.open_unix_connection(sock=sock, limit=2**26)
        message: FromWorker
        try:
            message = await self._read_message(reader)
        except MalformedMessage as exc:
            message = Fatal(str(exc))
        except UnavailableError:  # died before it could say why (e.g. killed, out of memory)
            message = Fatal("the worker process exited while loading")
        if not isinstance(message, Ready):
            self._writer.close()
            await self._reap()
            reason = message.message if isinstance(message, Fatal) else f"it sent {type(message).__name__} before READY"
            raise UnavailableError(f"engine failed to load {self.spec.models_path}: {reason}")
        self.info = message.info
        self.vision = bool(self.info.get(VISION))
        self._reader_task = asyncio.get_running_loop().create_task(self._read_loop(reader), name="engine-reader")

    @staticmethod
    async def _read_message(reader: asyncio.StreamReader) -> FromWorker:
        try:
            (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
            body = await reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError):  # a killed worker may reset the socket
            raise UnavailableError("engine worker exited") from None
        try:
            return decode_from_worker(body)
        except msgspec.DecodeError as exc:  # names the bad field, e.g. "Expected `int`, got `str` - at `$[1][0][0]`"
            raise MalformedMessage(f"malformed message from the engine worker: {exc}") from None

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                message = await self._read_message(reader)
                if isinstance(message, Step):
                    stats = self.last_stats = message.stats
                    if self.observer is not None:
                        self.received_at = time.perf_counter()
                        self.observer(stats.pop("steps", ()), stats.pop("queue_s", ()))
                    for update in message.updates:
                        self._dispatch(update)
                elif isinstance(message, PromptLength):
                    if (stream := self._streams.get(message.request_id)) is not None:
                        stream.prompt_tokens = message.tokens
                elif isinstance(message, Rejected):
                    stream = self._streams.pop(message.request_id, None)
                    log.warning("the engine refused request %d: %s", message.request_id, message.message)
                    if stream is not None:
                        stream._push(InvalidRequestError(REFUSED_MESSAGE))
        except UnavailableError as exc:  # the worker exited, or sent a malformed frame (then it is let go)
            code = self._process.exitcode if self._process else None
            self._fail_all(f"{exc} (exit code {code})")
            if not self._shutting_down:  # else aclose() reaps it
                await self._release()
        except Exception as exc:  # a bug here must not leave requests waiting forever
            log.exception("engine reader failed")
            self._fail_all(f"engine client failed: {exc}")

    def _dispatch(self, update: Update) -> None:
        request_id, status = update.request_id, update.status
        stream = self._streams.get(request_id)
        if stream is None:
            return  # cancelled meanwhile
        deltas = tuple(update.outputs)
        if status == Status.RUNNING:
            stream._push(StepOutput(deltas, False))
            return
        del self._streams[request_id]
        if status == Status.FINISHED or status == Status.CANCELLED:
            stream._push(StepOutput(deltas, True))
        elif status == Status.IGNORED:
            # genai preempts other requests to make room, so it gives up on a request only when it
            # cannot fit even alone (see cb_loop.py ignored()): a retry cannot help (a 400, not a 503).
            stream._push(
                InvalidRequestError(
                    f"the request does not fit in the engine's KV cache: its prompt ({stream.prompt_tokens} tokens) and "
                    "the tokens generated so far filled the whole cache with nothing left to preempt; shorten the "
                    "prompt or max_tokens, or give the model a larger KV cache (cache_size, num_kv_blocks)",
                    code="context_length_exceeded",
                )
            )
        elif status == Status.DROPPED:
            stream._push(OverloadedError("the engine dropped this request when another request outgrew its KV cache; retry the request"))
        else:
            stream._push(EngineError(FAILED_MESSAGE))  # the worker logged why

    def _fail_all(self, reason: str) -> None:
        self._dead = reason
        level = logging.INFO if self._shutting_down else logging.ERROR
        log.log(level, "engine worker for %s is gone: %s", self.spec.models_path, reason)
        streams, self._streams = self._streams, {}
        for stream in streams.values():
            stream._push(UnavailableError(f"the engine worker stopped while generating ({reason}); retry the request"))
        if not self._shutting_down and self.on_exit is not None:
            self.on_exit(reason)

    # -- requests -----------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._dead is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def active_requests(self) -> int:
        return len(self._streams)

    def observe(self, observer: StepObserver) -> None:
        """Hand every worker message's step and queue durations to `observer`, and have the
        worker add its metrics figures to each message's stats (see cb_loop.py stats())."""
        self.observer = observer
        if self._writer is not None and self._dead is None:
            self._writer.write(frame(encode(Telemetry(1))))

    def expect(self, coming: bool = True) -> None:
        """Announce a request that is being prepared (or withdraw the announcement), so an idle
        worker gathers a burst of arrivals into its first step."""
        if self._writer is not None and self._dead is None:
            self._writer.write(frame(encode(Expect(1 if coming else -1))))

    def submit(
        self, token_ids: list[int], config: dict[str, Any], prompt_text: str | None = None, images: Sequence[np.ndarray] = ()
    ) -> RequestStream:
        """Start a request on `token_ids`; a vision engine takes `prompt_text` (image tags in it) and
        `images` (RGB uint8 (h, w, 3)) instead, or decodes the ids, and sets the stream's
        `prompt_tokens` to its own count (image tokens too) just before the request's end."""
        if self._dead is not None or self._writer is None:
            raise UnavailableError(f"engine is not available: {self._dead or 'not started'}")
        if GRAMMAR_KEY in config and (problem := self.info.get(NO_STRUCTURED_OUTPUT)):
            raise InvalidRequestError(f"structured output is unavailable for model {self.servable_name!r}: {problem}")
        request_id = next(self._ids)
        if self.vision:
            body = encode(vision_request(request_id, token_ids, config, prompt_text, images, self.servable_name))
        elif images:
            raise InvalidRequestError(f"model {self.servable_name!r} does not take images (it is a text model)")
        stream = RequestStream(self, request_id)
        stream.prompt_tokens = len(token_ids)
        self._streams[request_id] = stream
        if not self.vision:
            self._writer.write(frame(encode(Add(request_id, token_ids, config))))
        else:  # the header apart: concatenating would copy the pixels once more
            self._writer.write(HEADER.pack(len(body)))
            self._writer.write(body)
        return stream

    def _cancel(self, request_id: int) -> None:
        if self._streams.pop(request_id, None) is not None and self._writer is not None and self._dead is None:
            self._writer.write(frame(encode(Cancel(request_id))))

    async def aclose(self) -> None:
        self._shutting_down = True
        if self._writer is not None and self._dead is None:
            try:
                self._writer.write(frame(encode(Shutdown())))
                await self._writer.drain()
            except ConnectionError:
                pass
        await self._reap()
        if self._reader_task is not None:
            self._reader_task.cancel()
            await asyncio.gather(self._reader_task, return_exceptions=True)
        if self._writer is not None:
            self._writer.close()
        self._fail_all("engine shut down") if self._streams else None

    async def _release(self) -> None:
        """The worker is gone: close its socket and reap the process, so no file descriptor (the
        socket, the process sentinel) is left behind by each restart."""
        if self._writer is not None:
            self._writer.close()
        await self._reap()
        if self._shutting_down:
            return  # aclose() came meanwhile and reaps it
        process, self._process = self._process, None
        if process is not None and not process.is_alive():
            process.close()

    async def _reap(self) -> None:
        # One join at a time: aclose() and the reader's _release() may both reap a worker that
        # died, and a second waitpid racing the first finds no child and leaves exitcode unset.
        async with self._reaping:
            process = self._process
            if process is None:
                return
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, process.join, 10)
            if process.is_alive():
                process.kill()
                await loop.run_in_executor(None, process.join, 5)

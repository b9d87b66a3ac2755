"""Structured output's grammars, compiled on trial before the engine sees them (issue 23, defect 2).

The engine compiles a request's grammar inside an engine step, where nothing can interrupt it:
every request of the servable waits meanwhile. The complexity budget (openai/schema_budget.py)
refuses what is known to be slow; what it does not foresee is caught here. Each grammar not seen
before is compiled first in a vetter process (grammar_vetter_worker.py) under a time limit: one
that spends more CPU time than that has its process killed (a fresh one starts on the next grammar) and is a 400.
Verdicts, accepted and refused, are kept in a bounded LRU cache, so a repeated grammar costs
nothing. The vetter process starts with the first grammar, so servables that never see
structured output pay nothing.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import json
import logging
import multiprocessing
import os
import socket
import time
from collections import OrderedDict
from typing import Any

import msgspec

from calculators.llm.engine.protocol import HEADER, encode, frame
from calculators.llm.grammar_vetter_worker import Compiles, FromVetter, Trial, VetterReady, decode_from_vetter, vetter_main
from calculators.llm.guided import Grammar
from graphs.errors import InvalidRequestError, UnavailableError

log = logging.getLogger("ovserve.grammar")

# The longest a grammar may take to compile on trial. The engine compiles an accepted grammar
# again in its step (genai keeps no compiled grammar across requests), so this also bounds the
# stall one new grammar can cause there.
# Measured in the vetter's CPU time, not wall time: on a busy machine (the engine uses every core)
# a cheap grammar can take seconds of wall time, and a refusal is cached.
GRAMMAR_COMPILE_LIMIT_S = 2.0
# A trial whose process got so little CPU that this much wall time passed (limit x factor) is
# neither accepted nor cached: a 503, try again.
WALL_LIMIT_FACTOR = 15.0
VERDICT_CACHE_SIZE = 1024  # grammars remembered (by SHA-256 of their JSON text)
LOAD_LIMIT_S = 120.0  # the vetter process loading the model (not counted in a trial's limit)
_POLL_S = 0.05  # how often a trial's CPU time is read
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class Verdict(enum.Enum):
    OK = "ok"
    SLOW = "slow"  # ran past the time limit
    FAILED = "failed"  # the grammar compiler refused it (or crashed on it)
    STARVED = "starved"  # the vetter got too little CPU to tell: not cached


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process, all its threads (Linux /proc); None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()  # the name may hold spaces and ')'
        return (int(fields[11]) + int(fields[12])) / _TICKS
    except (OSError, IndexError, ValueError):
        return None


def grammar_key(parts: Grammar) -> bytes:
    return hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode()).digest()


class _Child:
    """One vetter process and its connection (a Unix socketpair read by asyncio streams)."""

    def __init__(self, process: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.process = process
        self.reader = reader
        self.writer = writer

    @classmethod
    async def start(cls, models_path: str, log_level: str) -> _Child:
        ctx = multiprocessing.get_context("spawn")  # never fork a process running OpenVINO threads
        parent, child_end = ctx.Pipe(duplex=True)
        process = ctx.Process(target=vetter_main, args=(models_path, log_level, child_end), name="ovserve-grammar", daemon=True)
        process.start()
        child_end.close()
        sock = socket.socket(fileno=os.dup(parent.fileno()))
        parent.close()
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        child = cls(process, reader, writer)
        message: FromVetter | None
        try:
            message = await asyncio.wait_for(child.read(), LOAD_LIMIT_S)
        except (TimeoutError, UnavailableError):
            message = None
        except asyncio.CancelledError:  # the servable closes meanwhile
            await child.stop()
            raise
        if not isinstance(message, VetterReady):
            await child.stop()
            raise UnavailableError("structured output is unavailable right now: the grammar vetter could not start (see the server log)")
        return child

    async def read(self) -> FromVetter:
        try:
            (size,) = HEADER.unpack(await self.reader.readexactly(HEADER.size))
            body = await self.reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError):
            raise UnavailableError("the grammar vetter exited") from None
        try:
            return decode_from_vetter(body)
        except msgspec.DecodeError as exc:  # as if it had died on the grammar: it is stopped
            log.error("malformed message from the grammar vetter: %s", exc)
            raise UnavailableError("the grammar vetter sent a malformed message") from None

    async def trial(self, parts: Grammar, limit_s: float) -> Verdict | None:
        """The grammar's verdict; None when the process died on it. SLOW once the process has
        spent `limit_s` of CPU time on it (wall time where /proc is missing)."""
        pid = self.process.pid
        cpu_start, wall_start = cpu_seconds(pid), time.perf_counter()
        self.writer.write(frame(encode(Trial(parts))))
        reply = asyncio.ensure_future(self.read())
        try:
            while True:
                done, _ = await asyncio.wait({reply}, timeout=_POLL_S)
                if done:
                    break
                wall = time.perf_counter() - wall_start
                cpu_now = cpu_seconds(pid)
                used = wall if cpu_start is None or cpu_now is None else cpu_now - cpu_start
                if used > limit_s:
                    return Verdict.SLOW
                if wall > limit_s * WALL_LIMIT_FACTOR:
                    return Verdict.STARVED
        finally:
            if not reply.done():
                reply.cancel()  # the process is stopped next: its stream is not read again
        try:
            message = reply.result()
        except UnavailableError:
            return None
        return Verdict.OK if isinstance(message, Compiles) else Verdict.FAILED

    async def stop(self) -> None:
        """Kill the process (it may be deep in native compilation) and reap it."""
        self.writer.close()
        process = self.process
        if process.is_alive():
            process.kill()
        await asyncio.get_running_loop().run_in_executor(None, process.join, 10)
        if not process.is_alive():
            process.close()


class GrammarVetter:
    """Per servable: `await vet(grammar, param)` returns when the grammar compiles within the
    limit, else raises a 400 naming `param`. One trial at a time; requests with new grammars
    queue behind it, requests with the grammar on trial wait for its verdict."""

    def __init__(
        self,
        models_path: str,
        limit_s: float = GRAMMAR_COMPILE_LIMIT_S,
        cache_size: int = VERDICT_CACHE_SIZE,
        log_level: str = "INFO",
    ) -> None:
        self.models_path = models_path
        self.limit_s = limit_s
        self.cache_size = cache_size
        self.log_level = log_level
        self.trials = 0  # grammars compiled on trial (cache misses)
        self.starts = 0  # vetter processes started
        self._verdicts: OrderedDict[bytes, Verdict] = OrderedDict()
        self._pending: dict[bytes, asyncio.Task[Verdict | None]] = {}
        self._waiting: dict[bytes, int] = {}  # requests waiting for each pending verdict
        self._lock = asyncio.Lock()
        self._child: _Child | None = None
        self._closed = False

    @property
    def pid(self) -> int | None:
        return self._child.process.pid if self._child is not None else None

    async def vet(self, parts: Grammar, param: str) -> None:
        verdict = await self.verdict(parts)
        if verdict is Verdict.SLOW:
            raise InvalidRequestError(
                f"the JSON schema took longer than {self.limit_s} s to compile for structured output "
                f"(the grammar compile limit is {self.limit_s} s of CPU time); simplify it: fewer optional "
                "properties or optional pattern parts, shorter patterns and enums",
                param=param,
            )
        if verdict is Verdict.STARVED:
            raise UnavailableError("structured output is busy: the grammar could not be checked in time; try again")
        if verdict is Verdict.FAILED:
            raise InvalidRequestError("the JSON schema cannot be used for structured output: the grammar compiler refused it", param=param)

    async def verdict(self, parts: Grammar) -> Verdict:
        key = grammar_key(parts)
        while True:
            cached = self._verdicts.get(key)
            if cached is not None:
                self._verdicts.move_to_end(key)
                return cached
            task = self._pending.get(key)
            if task is None:
                task = asyncio.get_running_loop().create_task(self._trial(key, parts), name="grammar-trial")
                self._pending[key] = task
                task.add_done_callback(lambda done: self._settled(key, done))
            # A request that goes away does not stop a trial under way (its verdict is cached);
            # a trial still queued when all its requests went away is skipped (None): a flood of
            # abandoned grammars does not hold up the next ones.
            self._waiting[key] = self._waiting.get(key, 0) + 1
            try:
                verdict = await asyncio.shield(task)
            finally:
                self._waiting[key] -= 1
                if not self._waiting[key]:
                    del self._waiting[key]
            if verdict is not None:
                return verdict

    def _settled(self, key: bytes, task: asyncio.Task[Verdict | None]) -> None:
        self._pending.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved: every waiter may have gone

    async def _trial(self, key: bytes, parts: Grammar) -> Verdict | None:
        async with self._lock:
            if self._closed:
                raise UnavailableError("the servable is shutting down")
            if not self._waiting.get(key):
                return None  # every request for it went away while it queued
            if self._child is not None and not self._child.process.is_alive():
                await self._discard("it exited")
            if self._child is None:
                started = time.perf_counter()
                self._child = await _Child.start(self.models_path, self.log_level)
                self.starts += 1
                log.info("grammar vetter for %s started in %.2f s", self.models_path, time.perf_counter() - started)
            self.trials += 1
            started = time.perf_counter()
            verdict = await self._child.trial(parts, self.limit_s)
            took = time.perf_counter() - started
            if verdict is None:
                log.error("the grammar vetter died compiling a grammar; it is refused")
                await self._discard("it died")
                verdict = Verdict.FAILED
            elif verdict is Verdict.SLOW:
                log.warning("a grammar took more than %g s of CPU to compile: refused", self.limit_s)
                await self._discard("a trial ran past the limit")
            elif verdict is Verdict.STARVED:
                log.warning("a grammar trial got too little CPU in %.1f s to be judged: not cached", took)
                await self._discard("a trial was starved of CPU")
                return verdict
            else:
                log.debug("grammar trial: %s in %.3f s", verdict.value, took)
            self._verdicts[key] = verdict
            while len(self._verdicts) > self.cache_size:
                self._verdicts.popitem(last=False)
            return verdict

    async def _discard(self, why: str) -> None:
        child, self._child = self._child, None
        if child is not None:
            log.info("stopping the grammar vetter for %s: %s", self.models_path, why)
            await child.stop()

    async def aclose(self) -> None:
        self._closed = True
        for task in list(self._pending.values()):
            task.cancel()
        await asyncio.gather(*self._pending.values(), return_exceptions=True)
        async with self._lock:
            await self._discard("closing")

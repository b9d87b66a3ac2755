"""Restart supervision: the servable's current engine worker, started again when it dies unasked."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable

from calculators.llm.engine.base import WorkerSpec
from calculators.llm.engine.client import EngineClient
from graphs.errors import UnavailableError

log = logging.getLogger("ovserve.llm")

# A worker that dies unasked is started again, after these waits while restarts keep failing.
RESTART_BACKOFF_S = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0)

StartEngine = Callable[[WorkerSpec, str], Awaitable[EngineClient]]


class EngineSupervisor:
    """Owns the servable's EngineClient. When its worker dies unasked, requests in flight already
    got a clear error (EngineClient._fail_all) and new ones get a 503 from submit(); meanwhile a
    new worker is started (with backoff) and replaces `client`. Readers take `client` per use."""

    def __init__(self, client: EngineClient, start: StartEngine = EngineClient.start) -> None:
        self.client = client
        self.restarts = 0
        self._start = start  # a seam for tests
        self._closed = False
        self._restarting: asyncio.Task[None] | None = None
        client.on_exit = self._exited

    @property
    def healthy(self) -> bool:
        """False while the worker is down (being restarted): the servable's readiness follows it."""
        return self.client.alive

    def stats(self) -> dict[str, object]:
        return {
            "alive": self.client.alive,
            "pid": self.client.pid,
            "restarts": self.restarts,
            "active_requests": self.client.active_requests,
        }

    def _exited(self, reason: str) -> None:
        if not self._closed and self._restarting is None:
            self._restarting = asyncio.get_running_loop().create_task(self._restart(), name="engine-restart")

    async def _restart(self) -> None:
        dead = self.client
        try:
            for attempt in itertools.count():
                await asyncio.sleep(RESTART_BACKOFF_S[min(attempt, len(RESTART_BACKOFF_S) - 1)])
                log.warning("restarting the engine worker for %s (attempt %d)", dead.spec.models_path, attempt + 1)
                try:
                    client = await self._start(dead.spec, dead.servable_name)
                except UnavailableError as exc:
                    log.error("engine restart failed: %s", exc)
                    continue
                if self._closed:
                    await client.aclose()
                    return
                client.on_exit = self._exited
                self.client = client
                self.restarts += 1
                log.warning("engine worker for %s is back (restart %d)", dead.spec.models_path, self.restarts)
                return
        finally:
            self._restarting = None

    async def aclose(self) -> None:
        self._closed = True
        if self._restarting is not None:
            self._restarting.cancel()
            await asyncio.gather(self._restarting, return_exceptions=True)
        await self.client.aclose()

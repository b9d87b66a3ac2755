"""Restart supervision (calculators/llm/engine/supervisor.py) on fake engine clients: a worker that
dies unasked is replaced and counted, failed starts are retried, and nothing restarts once closed.
The real thing (a killed worker process) is tests/e2e/test_lifecycle.py and test_engine_faults.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from calculators.llm.engine import supervisor as supervisor_module
from calculators.llm.engine.base import WorkerSpec
from calculators.llm.engine.supervisor import EngineSupervisor
from graphs.errors import UnavailableError

SPEC = WorkerSpec("/models/tiny")


class FakeClient:
    def __init__(self, pid: int) -> None:
        self.spec, self.servable_name, self.pid = SPEC, "tiny", pid
        self.alive, self.closed, self.active_requests = True, False, 0
        self.on_exit: Any = None

    def die(self) -> None:  # as EngineClient._fail_all does when the worker is gone unasked
        self.alive = False
        self.on_exit("engine worker exited")

    async def aclose(self) -> None:
        self.closed = True


class Starter:
    """EngineClient.start's stand-in: fails `failures` times, then starts clients with pids 2, 3, ..."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[tuple[WorkerSpec, str]] = []
        self.started: list[FakeClient] = []
        self.gate: asyncio.Event | None = None  # set: starts wait for it

    async def __call__(self, spec: WorkerSpec, servable_name: str) -> Any:
        self.calls.append((spec, servable_name))
        if self.gate is not None:
            await self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise UnavailableError("engine failed to load")
        self.started.append(FakeClient(len(self.started) + 2))
        return self.started[-1]


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervisor_module, "RESTART_BACKOFF_S", (0.0,))


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_a_dead_worker_is_replaced_and_counted() -> None:
    first, start = FakeClient(1), Starter()
    supervisor = EngineSupervisor(first, start)  # type: ignore[arg-type]
    assert supervisor.healthy and supervisor.stats() == {"alive": True, "pid": 1, "restarts": 0, "active_requests": 0}
    first.die()
    assert not supervisor.healthy  # readiness is 503 until the new worker is up
    await settle()
    assert start.calls == [(SPEC, "tiny")] and supervisor.client is start.started[0]
    assert supervisor.healthy and supervisor.stats() == {"alive": True, "pid": 2, "restarts": 1, "active_requests": 0}
    supervisor.client.die()  # the new worker is supervised too
    await settle()
    assert supervisor.client.pid == 3 and supervisor.restarts == 2
    await supervisor.aclose()
    assert supervisor.client.closed


async def test_failed_starts_are_retried() -> None:
    first, start = FakeClient(1), Starter(failures=2)
    supervisor = EngineSupervisor(first, start)  # type: ignore[arg-type]
    first.die()
    first.die()  # a second report while restarting starts no second restart
    await settle()
    assert len(start.calls) == 3 and supervisor.restarts == 1 and supervisor.healthy
    await supervisor.aclose()


async def test_nothing_restarts_once_closed() -> None:
    first, start = FakeClient(1), Starter()
    start.gate = asyncio.Event()
    supervisor = EngineSupervisor(first, start)  # type: ignore[arg-type]
    first.die()
    await settle()
    assert start.calls  # a start is under way
    await supervisor.aclose()  # cancels it
    start.gate.set()
    await settle()
    assert supervisor.client is first and first.closed and supervisor.restarts == 0

    second = FakeClient(5)
    closed = EngineSupervisor(second, Starter())  # type: ignore[arg-type]
    await closed.aclose()
    second.die()  # (the client reports no exit after aclose; the supervisor ignores one anyway)
    await settle()
    assert closed.client is second and closed.restarts == 0


async def test_a_worker_started_while_closing_is_closed() -> None:
    first, start = FakeClient(1), Starter()
    start.gate = asyncio.Event()
    supervisor = EngineSupervisor(first, start)  # type: ignore[arg-type]
    first.die()
    await settle()
    supervisor._closed = True  # closing began while the start was under way
    start.gate.set()
    await settle()
    assert start.started[0].closed and supervisor.client is first and supervisor.restarts == 0

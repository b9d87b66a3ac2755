"""Live configuration: `GET /v1/config`, `POST /v1/config/reload` (only with
--enable_config_api, behind the API key when one is set), and polling the config file.

A reload builds and validates every graph of the new config.json first; only when all of them
are valid, and every new or changed servable has loaded, does it swap them in. Unchanged
servables (same folder, same graph text) stay as they are, with their engines. Removed or
replaced ones stop taking requests, finish the ones in flight, then free their engines. A
broken new config leaves the old one serving and is reported: never half-applied.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from graphs.errors import GraphConfigError, InvalidRequestError, NotFoundError
from serving.config_file import ConfigFileError
from serving.errors import error_response
from serving.loading import build_servables
from serving.servable import Servable, ServableManager, State
from serving.settings import Settings
from serving.state import SERVABLES, SETTINGS

log = logging.getLogger("ovserve.reload")

# IDLE (lazy, not loaded now) is AVAILABLE to clients: a request loads it.
_OVMS_STATE = {
    State.LOADING: "LOADING",
    State.AVAILABLE: "AVAILABLE",
    State.IDLE: "AVAILABLE",
    State.FAILED: "LOADING",
    State.UNLOADED: "END",
}


class ReloadError(Exception):
    pass


class ConfigReloader:
    def __init__(self, settings: Settings, servables: ServableManager) -> None:
        self.settings = settings
        self.servables = servables
        self._lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()
        self.last_error: str | None = None
        self._file_hash = self._hash()

    def _hash(self) -> str | None:
        path = self.settings.config_path
        try:
            return hashlib.sha256(path.read_bytes()).hexdigest() if path is not None else None
        except OSError:
            return None

    async def reload(self) -> None:
        """Apply the config file as it is now, or raise ReloadError and change nothing."""
        async with self._lock:
            self._file_hash = self._hash()
            try:
                built, problems = build_servables(self.settings)
            except (GraphConfigError, ConfigFileError) as exc:
                raise self._failed(str(exc)) from None
            if problems:
                raise self._failed("\n".join(str(p) for p in problems))
            current = self.servables.by_name()
            keep = {s.name: current[s.name] for s in built if s.name in current and current[s.name].fingerprint == s.fingerprint}
            fresh = [s for s in built if s.name not in keep]
            for servable in fresh:
                if servable.lazy:
                    servable.state = State.IDLE
            await asyncio.gather(*(s.load() for s in fresh if not s.lazy))
            failed = [s for s in fresh if s.state not in (State.AVAILABLE, State.IDLE)]
            if failed:
                await asyncio.gather(*(s.aclose() for s in fresh))
                raise self._failed("; ".join(f"{s.name}: {s.error}" for s in failed))
            self.servables.replace([keep.get(s.name) or s for s in built])
            gone = [s for name, s in current.items() if keep.get(name) is not s]
            for servable in gone:
                task = asyncio.get_running_loop().create_task(servable.retire(), name=f"retire:{servable.name}")
                self._retiring.add(task)
                task.add_done_callback(self._retiring.discard)
            self.last_error = None
            log.info(
                "config reloaded: %d kept, %d loaded, %d retiring",
                len(keep),
                len(fresh),
                len(gone),
            )

    def _failed(self, message: str) -> ReloadError:
        self.last_error = message
        log.error("config reload refused, the previous config keeps serving: %s", message)
        return ReloadError(message)

    async def poll(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            if self._hash() != self._file_hash:
                try:
                    await self.reload()
                except ReloadError:
                    pass  # reported in the log and by GET /v1/config

    async def aclose(self) -> None:
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)


RELOADER = web.AppKey("reloader", ConfigReloader)


def config_status(servables: ServableManager) -> dict[str, Any]:
    """OVMS's `GET /v1/config` shape: per model, its version status."""

    def status(s: Servable) -> dict[str, Any]:
        ok = s.state is not State.FAILED
        return {
            "model_version_status": [
                {
                    "version": "1",
                    "state": _OVMS_STATE[s.state],
                    "status": {"error_code": "OK" if ok else "UNKNOWN", "error_message": "OK" if ok else s.error or "failed"},
                }
            ]
        }

    return {s.name: status(s) for s in servables}


def _config_api_off(request: web.Request) -> web.Response | None:
    """A 404 naming the flag unless --enable_config_api: these routes change or reveal the
    serving config, so they are off by default (the config file is still watched)."""
    if request.app[SETTINGS].enable_config_api:
        return None
    return error_response(NotFoundError(f"{request.path} is off; start the server with --enable_config_api", code="config_api_off"))


async def get_config(request: web.Request) -> web.Response:
    return _config_api_off(request) or web.json_response(config_status(request.app[SERVABLES]))


async def post_reload(request: web.Request) -> web.Response:
    if (off := _config_api_off(request)) is not None:
        return off
    reloader = request.app.get(RELOADER)
    if reloader is None:
        return error_response(NotFoundError("this server was started without --config_path: there is nothing to reload"))
    try:
        await reloader.reload()
    except ReloadError as exc:
        return error_response(InvalidRequestError(f"config reload refused; the previous config keeps serving: {exc}"))
    return web.json_response(config_status(request.app[SERVABLES]))


async def reloader_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    reloader = app[RELOADER]
    poller = None
    if settings.file_system_poll_wait_seconds > 0:
        poller = asyncio.get_running_loop().create_task(reloader.poll(settings.file_system_poll_wait_seconds), name="config-poll")
    yield
    if poller is not None:
        poller.cancel()
        await asyncio.gather(poller, return_exceptions=True)
    await reloader.aclose()


def install(app: web.Application, settings: Settings, servables: ServableManager) -> None:
    app.router.add_get("/v1/config", get_config)
    app.router.add_post("/v1/config/reload", post_reload)
    if settings.config_path is not None:
        app[RELOADER] = ConfigReloader(settings, servables)
        app.cleanup_ctx.append(reloader_ctx)

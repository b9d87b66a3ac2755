"""Run the server until a signal: REST (and gRPC with --port), TLS, and the graceful drain.

SIGTERM or SIGINT starts a drain: readiness turns false and new requests get a 503 (so a load
balancer moves on), while requests in flight, streams included, get up to --shutdown_timeout
seconds to finish. Whatever is still running then is cancelled (its graph closes, the engine
drops the request) and the process exits 0. A second signal cuts the drain short.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
import time

from aiohttp import web

from graphs.errors import UnavailableError
from serving.admission import ADMISSION
from serving.app import create_app
from serving.frontend import CORE
from serving.servable import SHUTTING_DOWN, Servable, ServableManager, State
from serving.settings import Settings

log = logging.getLogger("ovserve")

# After the drain, aiohttp gets this long to end the handlers still running before it cancels them.
CANCEL_GRACE_S = 1.0


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.ssl_certfile is None or settings.ssl_keyfile is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile)
    return context


def in_flight(servables: ServableManager) -> int:
    return sum(s.active for s in servables)


async def drain(servables: ServableManager, timeout_s: float, interrupted: asyncio.Event) -> None:
    """Refuse new requests and wait (up to `timeout_s`, or a second signal) for those in flight."""
    servables.draining = True
    deadline = time.monotonic() + timeout_s
    waiting = in_flight(servables)
    log.info("draining: %d request(s) in flight, waiting up to %.0f s", waiting, timeout_s)
    while in_flight(servables) and not interrupted.is_set() and (left := deadline - time.monotonic()) > 0:
        idle = [asyncio.ensure_future(s.wait_idle()) for s in servables if s.active]
        stop = asyncio.ensure_future(interrupted.wait())
        await asyncio.wait([*idle, stop], timeout=left, return_when=asyncio.FIRST_COMPLETED)
        for task in (*idle, stop):
            task.cancel()
    if in_flight(servables):
        log.warning("drain ended with %d request(s) still in flight: cancelling them", in_flight(servables))
    else:
        log.info("drained")


async def serve(settings: Settings, servable_list: list[Servable]) -> int:
    servables = ServableManager(servable_list)
    app = create_app(settings, servables)
    access_log = log if settings.log_level == "DEBUG" else None
    runner = web.AppRunner(app, handler_cancellation=True, access_log=access_log, shutdown_timeout=CANCEL_GRACE_S)
    await runner.setup()
    tls = ssl_context(settings)
    site = web.TCPSite(runner, settings.rest_bind_address, settings.rest_port, ssl_context=tls)
    await site.start()
    port = runner.addresses[0][1] if runner.addresses else settings.rest_port
    scheme = "https" if tls else "http"
    # Tests and scripts read this line to find a port picked with --rest_port 0.
    print(f"ovserve: REST listening on {scheme}://{settings.rest_bind_address}:{port}", flush=True)
    if settings.ollama_port:  # the same app on Ollama's port: its clients need no change (serving.ollama_routes)
        await web.TCPSite(runner, settings.rest_bind_address, settings.ollama_port, ssl_context=tls).start()
        print(f"ovserve: Ollama API listening on {scheme}://{settings.rest_bind_address}:{settings.ollama_port}", flush=True)
    grpc_server = None
    if settings.grpc_port is not None:
        from serving.kserve.grpc_server import start_grpc_server

        grpc_server = await start_grpc_server(app[CORE])
        # Tests and scripts read this line to find a port picked with --port 0.
        print(f"ovserve: gRPC listening on {grpc_server.address}", flush=True)

    stop = asyncio.Event()
    interrupted = asyncio.Event()  # a second signal during the drain
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        (interrupted if stop.is_set() else stop).set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    exit_code = 0

    async def watch_loading() -> None:
        nonlocal exit_code
        while any(s.state is State.LOADING for s in servables):
            await asyncio.sleep(0.1)
        if not any(s.state in (State.AVAILABLE, State.IDLE) for s in servables):
            log.error("no servable could be loaded; exiting")
            exit_code = 1
            stop.set()
        else:
            print("ovserve: ready", flush=True)

    watcher = loop.create_task(watch_loading())
    await stop.wait()
    watcher.cancel()
    if exit_code == 0:
        # requests waiting for a slot get their 503 now (those running get the drain's time)
        app[ADMISSION].refuse_waiting(UnavailableError(SHUTTING_DOWN))
        await drain(servables, settings.shutdown_timeout, interrupted)
    log.info("shutting down")
    if grpc_server is not None:
        await grpc_server.stop(grace=None)
    await runner.cleanup()
    return exit_code

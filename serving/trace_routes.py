"""Per-request traces over HTTP: which requests are traced, where their traces are kept, and
the debug endpoints that return them.

`--trace` traces every request that runs a graph; `--trace header` only those that send
`X-Ovserve-Trace: 1`. Without `--trace` the header is ignored and nothing is installed: no
middleware, no clock reads, and no client can make the server record anything. A traced
response carries `X-Ovserve-Trace-Id` (for SSE too: it is added when the headers go out).

`GET /debug/traces` lists the traces kept (the last `--trace_keep`, newest first);
`GET /debug/traces/{id}` is one as Chrome trace JSON (ui.perfetto.dev, chrome://tracing);
`GET /debug/traces/{id}/summary` the same in numbers per node. `--trace_dir DIR` also writes
each finished trace to `DIR/<id>.json`, keeping the newest `--trace_dir_max_files` (1000; 0: no
limit): beyond that the oldest trace files are deleted, counting those an earlier run left
(named like a trace id) and never touching any other file. The endpoints sit behind the API key like every path
outside `--api_key_open_paths`. A trace holds names, times and packet counts only: never a
prompt or an answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web

from graphs.errors import NotFoundError
from graphs.trace import Trace
from serving.frontend import CONTEXT
from serving.settings import Settings

log = logging.getLogger("ovserve.trace")

TRACE_HEADER = "X-Ovserve-Trace"
TRACE_ID_HEADER = "X-Ovserve-Trace-Id"
_YES = frozenset({"1", "true", "yes", "on"})
_TRACE_FILE = re.compile(r"[0-9a-f]{16}\.json")  # graphs.trace ids: secrets.token_hex(8)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class TraceStore:
    """The last `keep` traces by id (in flight ones included), optionally written to a folder."""

    def __init__(self, keep: int, directory: Path | None = None, trace_all: bool = True, max_files: int = 0) -> None:
        self.keep = keep
        self.directory = directory
        self.trace_all = trace_all  # --trace; else --trace header: only requests that ask
        self.max_files = max_files  # trace files kept in directory; 0: no limit
        self._traces: OrderedDict[str, Trace] = OrderedDict()
        self._writes: set[asyncio.Future[Path]] = set()
        self._files: deque[Path] = deque(_trace_files(directory) if directory is not None and max_files else ())

    def add(self, trace: Trace) -> None:
        self._traces[trace.id] = trace
        while len(self._traces) > self.keep:
            self._traces.popitem(last=False)
        if self.directory is not None:
            if trace.done:
                self._write(trace)
            else:
                trace.on_done.append(self._write)

    def get(self, trace_id: str) -> Trace | None:
        return self._traces.get(trace_id)

    def newest_first(self) -> list[Trace]:
        return list(reversed(self._traces.values()))

    def _write(self, trace: Trace) -> None:
        """In a thread: exporting a long generation's trace takes a few ms of CPU."""
        assert self.directory is not None
        future = asyncio.get_running_loop().run_in_executor(None, _write_file, self.directory, trace)
        self._writes.add(future)
        future.add_done_callback(self._written)

    def _written(self, future: asyncio.Future[Path]) -> None:
        self._writes.discard(future)
        if future.cancelled():
            return
        if future.exception() is not None:
            log.error("writing a trace to %s failed: %s", self.directory, future.exception())
        elif self.max_files:
            self._files.append(future.result())
            while len(self._files) > self.max_files:
                try:
                    self._files.popleft().unlink(missing_ok=True)
                except OSError as exc:
                    log.error("deleting an old trace file failed: %s", exc.strerror or exc)

    async def flush(self) -> None:
        """Wait for the files being written."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)


def _write_file(directory: Path, trace: Trace) -> Path:
    path = directory / f"{trace.id}.json"
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(trace.chrome()), encoding="utf-8")
    os.replace(partial, path)  # readers never see half a file
    return path


def _trace_files(directory: Path) -> list[Path]:
    """The trace files already in `directory` (an earlier run's), oldest first."""
    found = []
    try:
        for entry in os.scandir(directory):
            if _TRACE_FILE.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                found.append((entry.stat().st_mtime_ns, Path(entry.path)))
    except OSError as exc:
        log.error("listing the trace files in %s failed: %s", directory, exc.strerror or exc)
    return [path for _, path in sorted(found)]


TRACES = web.AppKey("traces", TraceStore)


def asked(value: object) -> bool:
    """Whether a header or metadata value asks for a trace (`1`, `true`, `yes`, `on`)."""
    return isinstance(value, str) and value.strip().lower() in _YES


async def _name_trace(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the headers of a traced response name its trace(s)."""
    ctx = request.get(CONTEXT)
    ids = ctx.trace_ids if ctx is not None else None
    if ids:
        response.headers[TRACE_ID_HEADER] = ",".join(ids)
        if "Origin" in request.headers:  # let browser clients read it
            response.headers.add("Access-Control-Expose-Headers", TRACE_ID_HEADER)


def _store(request: web.Request) -> TraceStore:
    store = request.app.get(TRACES)
    if store is None:
        raise NotFoundError("per-request traces are off; start the server with --trace (see the README)", code="tracing_off")
    return store


def _trace(request: web.Request) -> Trace:
    trace_id = request.match_info["trace_id"]
    trace = _store(request).get(trace_id)
    if trace is None:
        keep_n = request.app[TRACES].keep
        raise NotFoundError(f"no trace {trace_id!r}: the server keeps the last {keep_n}", param="trace_id", code="trace_not_found")
    return trace


async def list_traces(request: web.Request) -> web.Response:
    # NotFoundError (tracing off, unknown id) leaves through the app's errors middleware
    return web.json_response({"object": "list", "data": [t.info() for t in _store(request).newest_first()]})


async def get_trace(request: web.Request) -> web.Response:
    return web.json_response(_trace(request).chrome())


async def get_summary(request: web.Request) -> web.Response:
    return web.json_response(_trace(request).summary())


def install(app: web.Application, settings: Settings) -> TraceStore | None:
    """The debug routes always (they explain that tracing is off); with --trace, the store
    (which requests it keeps traces of: serving.frontend.FrontEndCore.context), returned."""
    app.router.add_get("/debug/traces", list_traces)
    app.router.add_get("/debug/traces/{trace_id}", get_trace)
    app.router.add_get("/debug/traces/{trace_id}/summary", get_summary)
    if settings.trace == "off":
        return None
    store = app[TRACES] = TraceStore(settings.trace_keep, settings.trace_dir, settings.trace == "all", settings.trace_dir_max_files)
    app.on_response_prepare.append(_name_trace)

    async def flush_ctx(_: web.Application) -> AsyncIterator[None]:
        yield
        await store.flush()

    app.cleanup_ctx.append(flush_ctx)
    return store

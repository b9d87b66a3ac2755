"""The front-end core: what every front end (OpenAI REST, KServe REST, KServe gRPC, …) calls to
serve a request, with the request's context passed explicitly.

A front end decodes its protocol, makes a `RequestContext` (`FrontEndCore.context`), resolves the
model (`resolve`), starts the servable's graph (`start`), iterates the run and encodes the
response calculator's structured chunks in its own format (serving.openai_routes for JSON and
SSE; serving.kserve for KServe). Admission, metrics and traces are the core's, so the gRPC
server needs nothing from the aiohttp app.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from calculators.llm.telemetry import TELEMETRY, RequestTelemetry
from calculators.media.access import MEDIA, MediaAccess
from calculators.openai.tolerance import IGNORED_FIELDS, IgnoredFields
from calculators.packets import Endpoint, HttpRequestPayload
from graphs.errors import InvalidRequestError
from graphs.runner import GraphRun, OutputPacket
from graphs.trace import Trace
from serving.admission import NOT_READING, Admission
from serving.errors import RequestTooLargeError, json_object
from serving.servable import Servable, ServableManager
from serving.settings import Settings
from serving.state import SETTINGS

log = logging.getLogger("ovserve.http")

if TYPE_CHECKING:  # (they read a request's context: imported at run time, a cycle)
    from serving.metrics import Metrics
    from serving.trace_routes import TraceStore

# Graph inputs a front end can feed: LLM graphs take HTTP_REQUEST_PAYLOAD, OVMS's embeddings and
# rerank graphs REQUEST_PAYLOAD.
REQUEST_TAGS = ("HTTP_REQUEST_PAYLOAD", "REQUEST_PAYLOAD")


@dataclass(slots=True)
class RequestContext:
    """One request on its way through the core, whatever its protocol."""

    arrived: float  # time.perf_counter() when the front end got it (before its body was read)
    deadline: float | None = None  # --request_timeout: when admission gives up on it
    telemetry: RequestTelemetry | None = None  # metrics on: where its LLM figures go
    traces: TraceStore | None = None  # traced: where its traces are kept (None: not traced)
    trace_ids: list[str] = field(default_factory=list)  # the traces it started, for the response
    model: str = ""  # the servable serving it: the metrics' model label
    route: str = ""  # the API route it came by ("POST /v1/messages", "gRPC ModelInfer"): its traces' label
    ignored: IgnoredFields = field(default_factory=IgnoredFields)  # request fields without effect, for the response header


class FrontEndCore:
    """The server's request machinery shared by its front ends."""

    def __init__(
        self,
        settings: Settings,
        servables: ServableManager,
        admission: Admission,
        metrics: Metrics | None,
        traces: TraceStore | None,
        media: MediaAccess | None = None,
    ) -> None:
        self.settings = settings
        self.servables = servables
        self.admission = admission
        self.metrics = metrics
        self.traces = traces
        self.media = media  # the server's image loader, for vision servables' runs (None: data URLs only)

    def context(self, trace_asked: bool = False, route: str = "") -> RequestContext:
        """A new request's context: its deadline, its telemetry (when metrics want per-request
        figures) and its trace store (with --trace, or --trace header when the client asked)."""
        arrived = time.perf_counter()
        ctx = RequestContext(arrived, self.admission.deadline(), route=route)
        metrics = self.metrics
        if metrics is not None and (metrics.per_request or metrics.per_step):
            ctx.telemetry = RequestTelemetry(metrics, arrived)
        traces = self.traces
        if traces is not None and (traces.trace_all or trace_asked):
            ctx.traces = traces
        return ctx

    async def resolve(self, ctx: RequestContext, model: object) -> Servable:
        """The loaded servable `model` names (400 without one, 404 when unknown); a lazy or
        idle-unloaded servable loads now."""
        if not isinstance(model, str) or not model:
            raise InvalidRequestError("missing required field: model", param="model")
        servable = self.servables.get(model)
        ctx.model = servable.name
        await servable.ensure_loaded()
        return servable

    def start(self, ctx: RequestContext, servable: Servable, endpoint: Endpoint, body: dict[str, Any]) -> GraphRun:
        """Start the servable's graph on a request body. The caller iterates the run and must
        always `await asyncio.shield(servable.finish(run))`."""
        tag = next((t for t in REQUEST_TAGS if t in servable.input_tags), None)
        if tag is None:
            raise InvalidRequestError(f"model {servable.name!r} does not serve {endpoint}", param="model")
        traces = ctx.traces
        trace = Trace(servable=servable.name, endpoint=endpoint, route=ctx.route) if traces is not None else None
        # What the run's calculators read from `ctx.request`: the metrics sink, the image loader, where
        # ignored request fields go.
        request: dict[str, object] = {IGNORED_FIELDS: ctx.ignored}
        if ctx.telemetry is not None:
            request[TELEMETRY] = ctx.telemetry
        if self.media is not None:
            request[MEDIA] = self.media
        run = servable.start({tag: HttpRequestPayload(endpoint, body)}, trace=trace, request=request)
        if traces is not None and trace is not None:  # kept once its run has started
            traces.add(trace)
            ctx.trace_ids.append(trace.id)
        return run


CORE = web.AppKey("frontend_core", FrontEndCore)
CONTEXT = web.RequestKey("ovserve_request_context", RequestContext)


async def read_body(request: web.Request) -> bytes:
    """The request's body; a 413 naming the limit when it is larger than --max_body_bytes."""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SETTINGS].max_body_bytes
        raise RequestTooLargeError(f"request body is larger than the limit of {limit} bytes") from None


async def read_json_body(request: web.Request) -> dict[str, Any]:
    """The request's body as one JSON object (every front end's bodies): a 413 or a 400 otherwise."""
    return json_object(await read_body(request), "request body")


def weigh_chunks(out: OutputPacket) -> int:
    """About the bytes a run's output becomes on the wire, without encoding it (front ends that
    encode as they send): the backpressure bound counts these."""
    choices = getattr(out.packet.value, "choices", ())
    return 160 * max(1, len(choices)) + sum(len(str(c.get("delta") or c.get("text") or "")) for c in choices)


def _drop(request: web.Request, admission: Admission, message: str, *args: object) -> None:
    """A client that stopped reading: counted (ovserve_requests_rejected_total{reason="not_reading"}),
    logged, and its connection dropped (which frees a handler stuck in a write)."""
    admission.rejected[NOT_READING] += 1
    log.warning(message, *args)
    if (transport := request.transport) is not None:
        transport.abort()


def bound_unsent(
    run: GraphRun, request: web.Request, admission: Admission, who: str, weigh: Callable[[OutputPacket], int] = weigh_chunks
) -> None:
    """Backpressure for every streaming front end: at most --max_unsent_bytes of output wait for
    the client in this process (the transport's buffer plus what the run queued behind it).
    Beyond that the client has stopped reading: the run is cancelled (the engine request dropped,
    its KV cache freed; the handler's iteration raises OutputOverflowError) and the client
    dropped. A stream whose run has ended but whose last bytes do not fit is `Sender`'s."""
    limit = request.app[SETTINGS].max_unsent_bytes
    transport = request.transport

    def drop_client() -> None:
        message = "a client of %s stopped reading (over %d bytes unsent): request cancelled, connection dropped"
        _drop(request, admission, message, who, limit)

    def unsent() -> int:
        return 0 if transport is None else transport.get_write_buffer_size()

    run.bound_outputs(limit, weigh, drop_client, unsent)


class SendStalledError(ConnectionResetError):
    """A send made no progress within --send_timeout; the client is dropped already. The handler
    returns `response`: aiohttp then finds the connection closed as it ends it (an exception out
    of the handler would be logged as an error)."""

    def __init__(self, response: web.StreamResponse) -> None:
        super().__init__("the client stopped reading")
        self.response = response


class Sender:
    """Every front end's writes to its client, each awaited within --send_timeout. A write waits
    while the socket's buffers are full; one that waits that long means the client stopped
    reading (e.g. a stream whose run has ended and whose last bytes do not fit, which
    --max_unsent_bytes never sees grow): the client is dropped (the handler, and with it the
    request's admission slot, is freed), counted as not_reading, and SendStalledError raised.
    Set `response` to the stream once there is one."""

    __slots__ = ("_request", "_admission", "_model", "_timeout", "response")

    def __init__(self, request: web.Request, admission: Admission, model: str) -> None:
        self._request = request
        self._admission = admission
        self._model = model
        self._timeout = request.app[SETTINGS].send_timeout or None
        self.response = web.StreamResponse()

    async def __call__(self, write: Awaitable[object]) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await write
        except TimeoutError:
            message = "a client of %s took nothing for %g s (--send_timeout): connection dropped"
            _drop(self._request, self._admission, message, self._model, self._timeout or 0)
            raise SendStalledError(self.response) from None


class JsonAnswer(web.Response):
    """A whole JSON answer; aiohttp writes it after the handler returned, within --send_timeout."""

    def __init__(self, body: bytes, send: Sender, headers: dict[str, str] | None = None) -> None:
        super().__init__(body=body, content_type="application/json", headers=headers)
        self._send = send

    async def write_eof(self, data: bytes = b"") -> None:
        await self._send(super().write_eof(data))

"""KServe v2 gRPC (`inference.GRPCInferenceService`, with Triton's ModelStreamInfer) and the
standard `grpc.health.v1.Health` service, on grpc.aio in the server's own event loop (uvloop
works: grpc.aio only needs an asyncio loop).

With an API key, every inference-service call needs metadata `authorization: Bearer <key>`
(UNAUTHENTICATED otherwise) unless the REST path it mirrors is under `--api_key_open_paths`
(ServerLive/ServerReady mirror /v2/health/live and /v2/health/ready, open by default); the health
service is always open. Health status is SERVING while the server is ready (`/v2/health/ready`).
With `--trace` (or `--trace header` and metadata `x-ovserve-trace: 1`) inference calls are traced
like REST requests; the response names the trace in the `ovserve_trace_id` parameter (the final
one of a stream) and, for ModelInfer, in the initial metadata `x-ovserve-trace-id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from graphs.errors import OvserveError
from serving import trace_routes
from serving.admission import NOT_READING
from serving.auth import is_open_path, key_matches
from serving.errors import internal_error
from serving.frontend import FrontEndCore, RequestContext
from serving.kserve import codec, inference
from serving.kserve.grpc_codec import decoded, response_to_proto, status_code
from serving.kserve.inference import InferRequest, InferResult, Parameter
from serving.kserve.proto import inference_service_pb2 as pb
from serving.kserve.proto import inference_service_pb2_grpc as pb_grpc
from serving.servable import ServableManager

log = logging.getLogger("ovserve.grpc")

SERVICE_NAME = "inference.GRPCInferenceService"
FINAL_RESPONSE = "triton_final_response"
EMPTY_FINAL_RESPONSE = "triton_enable_empty_final_response"
# Per-request traces: the call's metadata asks (with --trace header); the response names them.
TRACE_METADATA = trace_routes.TRACE_HEADER.lower()
TRACE_ID_PARAMETER = "ovserve_trace_id"
HEALTH_POLL_S = 0.5  # how often Watch subscribers learn of readiness changes


def _stream_response(
    request: InferRequest, final: bool, finish: str | None = None, empty: bool = False, trace_ids: list[str] | None = None
) -> Any:
    """A stream response with an empty `text_output` (none when `empty`)."""
    outputs = [] if empty else [codec.bytes_tensor(inference.TEXT_OUTPUT, [b""])]
    parameters: dict[str, Parameter] = {FINAL_RESPONSE: final}
    if finish:
        parameters["finish_reason"] = finish
    if trace_ids:
        parameters[TRACE_ID_PARAMETER] = ",".join(trace_ids)
    result = InferResult(request.model_name, request.id, outputs, parameters)
    return pb.ModelStreamInferResponse(infer_response=response_to_proto(result))


class _Pieces:
    """One request's non-final stream responses: everything but the text is the same for each,
    so it is built once and each piece copies it and sets its text."""

    __slots__ = ("_template",)

    def __init__(self, request: InferRequest) -> None:
        self._template = _stream_response(request, final=False)

    def response(self, text: str) -> Any:
        response = pb.ModelStreamInferResponse()
        response.CopyFrom(self._template)
        response.infer_response.raw_output_contents[0] = codec.serialize_bytes([text.encode()])
        return response


# -- the services ----------------------------------------------------------------------------


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, core: FrontEndCore) -> None:
        settings = core.settings
        self._core = core
        self._servables = core.servables
        self._api_key = settings.api_key
        self._open_paths = settings.api_key_open_paths
        self._max_unsent = settings.max_unsent_bytes

    async def _authorize(self, context: grpc.aio.ServicerContext, rest_path: str) -> None:
        if self._api_key is None or is_open_path(rest_path, self._open_paths):
            return
        metadata: Mapping[str, Any] = dict(context.invocation_metadata() or ())
        given = metadata.get("authorization", "")
        if not isinstance(given, str) or not key_matches(given, self._api_key):
            message = "missing or wrong API key: send metadata authorization: Bearer <key>" if given else "missing API key"
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def ServerLive(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._authorize(context, "/v2/health/live")
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._authorize(context, "/v2/health/ready")
        return pb.ServerReadyResponse(ready=self._servables.ready)

    async def ModelReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._authorize(context, f"/v2/models/{request.name}/ready")
        try:
            return pb.ModelReadyResponse(ready=inference.model_ready(self._servables, request.name, request.version))
        except OvserveError as exc:
            await context.abort(status_code(exc), exc.message)

    async def ServerMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._authorize(context, "/v2")
        return pb.ServerMetadataResponse(**inference.server_metadata())

    async def ModelMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._authorize(context, f"/v2/models/{request.name}")
        try:
            servable = inference.find_model(self._servables, request.name, request.version)
        except OvserveError as exc:
            await context.abort(status_code(exc), exc.message)
        meta = inference.model_metadata(servable)
        return pb.ModelMetadataResponse(
            name=meta["name"],
            versions=meta["versions"],
            platform=meta["platform"],
            inputs=[pb.ModelMetadataResponse.TensorMetadata(**t) for t in meta["inputs"]],
            outputs=[pb.ModelMetadataResponse.TensorMetadata(**t) for t in meta["outputs"]],
        )

    @contextlib.asynccontextmanager
    async def _serving(self, trace_asked: bool, method: str) -> AsyncIterator[RequestContext]:
        """What every inference request runs in, as on REST: its context (metrics telemetry, a
        trace with --trace, or --trace header when the call's metadata asks) and admission."""
        ctx = self._core.context(trace_asked, f"gRPC {method}")
        async with self._core.admission.limits(ctx.deadline):
            yield ctx

    @staticmethod
    def _trace_asked(context: grpc.aio.ServicerContext) -> bool:
        metadata: Mapping[str, Any] = dict(context.invocation_metadata() or ())
        return trace_routes.asked(metadata.get(TRACE_METADATA))

    async def ModelInfer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._authorize(context, f"/v2/models/{request.model_name}/infer")
        try:
            async with self._serving(self._trace_asked(context), "ModelInfer") as ctx:
                result = await inference.infer(self._core, ctx, await decoded(request))
        except OvserveError as exc:
            await context.abort(status_code(exc), exc.message)
        except Exception:
            log.exception("ModelInfer on %s failed", request.model_name)
            await context.abort(grpc.StatusCode.INTERNAL, internal_error().message)
        response = response_to_proto(result)
        if trace_ids := ctx.trace_ids:  # as REST's X-Ovserve-Trace-Id: in the initial metadata, and as a parameter
            await context.send_initial_metadata(((TRACE_METADATA + "-id", ",".join(trace_ids)),))
            response.parameters[TRACE_ID_PARAMETER].string_param = ",".join(trace_ids)
        return response

    async def ModelStreamInfer(self, request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        """Requests are served concurrently as they arrive; each sends one response per piece of
        text (`triton_final_response: false`), then a final one (`true`, with `finish_reason`;
        without outputs when the request set `triton_enable_empty_final_response`, else with an
        empty `text_output`). A failed request sends one response with `error_message` (its
        `infer_response` is final too); the stream stays open for the others.

        A client that stops reading: the call's responses waiting to be sent are bounded by
        --max_unsent_bytes (see _Outbox); beyond, every request of the call is cancelled (their
        engine requests dropped) and the call ends with RESOURCE_EXHAUSTED."""
        # Every model's infer path must be open for a stream to go without a key.
        await self._authorize(context, "/v2/models/")
        trace_asked = self._trace_asked(context)  # the call's metadata, the same for each request
        tasks: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()
        aborting: list[asyncio.Task[None]] = []

        def stop_serving() -> None:  # the client stopped reading: in the turn that overflowed
            self._core.admission.rejected[NOT_READING] += 1
            log.warning(
                "a ModelStreamInfer client stopped reading (over %d bytes of responses unsent): its requests cancelled, "
                "the call ended with RESOURCE_EXHAUSTED",
                self._max_unsent,
            )
            reader.cancel()
            for task in list(tasks):
                task.cancel()
            aborting.append(loop.create_task(_abort_not_reading(context, self._max_unsent)))

        outbox = _Outbox(self._max_unsent, stop_serving)

        async def serve_one(message: Any) -> None:
            try:
                request = await decoded(message)
                pieces = _Pieces(request)
                async with self._serving(trace_asked, "ModelStreamInfer") as ctx:
                    finish = await inference.infer_stream(self._core, ctx, request, lambda text: outbox.put(pieces.response(text)))
                empty = request.parameters.get(EMPTY_FINAL_RESPONSE) is True
                outbox.put(_stream_response(request, final=True, finish=finish, empty=empty, trace_ids=ctx.trace_ids))
            except OvserveError as exc:
                outbox.put(_stream_error(message, exc.message))
            except Exception:
                log.exception("ModelStreamInfer on %s failed", message.model_name)
                outbox.put(_stream_error(message, internal_error().message))

        def done(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            outbox.wake()  # the writer: it may be time to end

        async def read_requests() -> None:
            async for message in request_iterator:
                task = loop.create_task(serve_one(message))
                tasks.add(task)
                task.add_done_callback(done)

        reader = loop.create_task(read_requests())
        reader.add_done_callback(lambda _: outbox.wake())
        try:
            while not outbox.overflowed:
                item = await outbox.get()
                if item is not None:
                    yield item
                elif reader.done() and not tasks and outbox.empty():
                    reader.result()  # a broken request stream ends the call with its error
                    return
            # The status is on its way (after what grpc.aio has buffered already): ending the
            # generator now lets grpc.aio finish the call as aborted.
            await asyncio.gather(*aborting, return_exceptions=True)
        finally:
            reader.cancel()
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(reader, *tasks, return_exceptions=True)


class _Outbox:
    """A ModelStreamInfer call's responses waiting for grpc.aio to send them, bounded in bytes.

    grpc.aio sends one response at a time and each send waits for HTTP/2 flow control: when the
    client stops reading, its window fills and the writer stalls, while the call's requests keep
    generating into this queue. Past `limit` bytes unsent (serialized sizes; what grpc.aio holds
    already, at most the client's window, is not counted), `on_overflow` is called once, in the
    turn that overflowed, and nothing more is queued."""

    __slots__ = ("_queue", "unsent", "limit", "overflowed", "_on_overflow")

    def __init__(self, limit: int, on_overflow: Callable[[], None]) -> None:
        self._queue: asyncio.Queue[tuple[Any, int] | None] = asyncio.Queue()
        self.unsent = 0
        self.limit = limit
        self.overflowed = False
        self._on_overflow = on_overflow

    def put(self, response: Any) -> None:
        if self.overflowed:
            return
        size = response.ByteSize()
        self.unsent += size
        if self.unsent > self.limit:
            self.overflowed = True
            self._queue.put_nowait(None)
            self._on_overflow()
            return
        self._queue.put_nowait((response, size))

    def wake(self) -> None:
        self._queue.put_nowait(None)

    def empty(self) -> bool:
        return self._queue.empty()

    async def get(self) -> Any | None:
        """The next response (None: woken, nothing to send)."""
        item = await self._queue.get()
        if item is None:
            return None
        self.unsent -= item[1]
        return item[0]


async def _abort_not_reading(context: grpc.aio.ServicerContext, limit: int) -> None:
    """End the call with RESOURCE_EXHAUSTED. From a task of its own: the call's writer may be
    stuck in grpc.aio's send for as long as the client does not read."""
    message = (
        f"the client stopped reading: over {limit} bytes of responses were left unsent (--max_unsent_bytes); "
        "the stream's requests were cancelled"
    )
    with contextlib.suppress(grpc.aio.AbortError):
        await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, message)


def _stream_error(message: Any, text: str) -> Any:
    response = pb.ModelInferResponse(model_name=message.model_name, model_version=inference.MODEL_VERSION, id=message.id)
    response.parameters[FINAL_RESPONSE].bool_param = True
    return pb.ModelStreamInferResponse(error_message=text, infer_response=response)


class _ReadinessHealth(health.aio.HealthServicer):  # type: ignore[misc]
    """SERVING while the server is ready, for the whole server ("") and the inference service."""

    def __init__(self, servables: ServableManager) -> None:
        super().__init__()
        self._servables = servables

    async def refresh(self) -> None:
        ready = self._servables.ready
        status = health_pb2.HealthCheckResponse.SERVING if ready else health_pb2.HealthCheckResponse.NOT_SERVING
        for service in ("", SERVICE_NAME):
            if self._server_status.get(service) != status:
                await self.set(service, status)

    async def Check(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self.refresh()
        return await super().Check(request, context)

    async def poll(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(HEALTH_POLL_S)


class GrpcServer:
    """The running gRPC front end: `address` is "host:port" with the real port."""

    def __init__(self, server: grpc.aio.Server, address: str, health_servicer: _ReadinessHealth, poller: asyncio.Task[None]) -> None:
        self._server = server
        self.address = address
        self._health = health_servicer
        self._poller = poller

    async def stop(self, grace: float | None) -> None:
        self._poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._poller
        await self._health.enter_graceful_shutdown()
        await self._server.stop(grace)


async def start_grpc_server(core: FrontEndCore) -> GrpcServer:
    """Listen on `--grpc_bind_address` (else the REST one) and `--port` (0: a free one), with TLS
    when `--ssl_certfile`/`--ssl_keyfile` are set; serve with the REST app's front-end core."""
    settings, servables = core.settings, core.servables
    assert settings.grpc_port is not None
    host = settings.grpc_bind_address or settings.rest_bind_address
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", settings.max_body_bytes)])
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceServicer(core), server)
    health_servicer = _ReadinessHealth(servables)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    host_port = f"[{host}]:{settings.grpc_port}" if ":" in host else f"{host}:{settings.grpc_port}"
    if settings.ssl_certfile is not None and settings.ssl_keyfile is not None:
        credentials = grpc.ssl_server_credentials([(settings.ssl_keyfile.read_bytes(), settings.ssl_certfile.read_bytes())])
        port = server.add_secure_port(host_port, credentials)
    else:
        port = server.add_insecure_port(host_port)
    await server.start()
    await health_servicer.refresh()
    poller = asyncio.get_running_loop().create_task(health_servicer.poll(), name="grpc-health")
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return GrpcServer(server, address, health_servicer, poller)

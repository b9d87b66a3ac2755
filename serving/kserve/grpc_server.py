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
from collections.abc import AsyncIterator, Mapping
from typing import Any

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from graphs.errors import InvalidRequestError, OvserveError
from serving import trace_routes
from serving.admission import ADMISSION
from serving.auth import key_matches
from serving.errors import internal_error, status_of
from serving.kserve import codec, inference
from serving.kserve.inference import InferRequest, InferResult, Parameter
from serving.kserve.proto import inference_service_pb2 as pb
from serving.kserve.proto import inference_service_pb2_grpc as pb_grpc
from serving.metrics import request_scope
from serving.servable import ServableManager
from serving.settings import Settings

log = logging.getLogger("ovserve.grpc")

SERVICE_NAME = "inference.GRPCInferenceService"
FINAL_RESPONSE = "triton_final_response"
EMPTY_FINAL_RESPONSE = "triton_enable_empty_final_response"
# Per-request traces: the call's metadata asks (with --trace header); the response names them.
TRACE_METADATA = trace_routes.TRACE_HEADER.lower()
TRACE_ID_PARAMETER = "ovserve_trace_id"
HEALTH_POLL_S = 0.5  # how often Watch subscribers learn of readiness changes

# gRPC's status for each HTTP status that serving.errors.status_of gives an error (one mapping
# of errors to statuses, in serving.errors; gRPC only translates it).
_CODES: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    405: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,  # admission queue full
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def status_code(error: OvserveError) -> grpc.StatusCode:
    return _CODES.get(status_of(error), grpc.StatusCode.INTERNAL)


# -- messages <-> protocol-neutral data ------------------------------------------------------


def _parameter(value: Any) -> Parameter:
    kind = value.WhichOneof("parameter_choice")
    return getattr(value, kind) if kind is not None else ""  # type: ignore[no-any-return]


def _set_parameter(target: Any, value: Parameter) -> None:
    if isinstance(value, bool):
        target.bool_param = value
    elif isinstance(value, int):
        target.int64_param = value
    elif isinstance(value, float):
        target.double_param = value
    else:
        target.string_param = value


_CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
}


def _input_tensor(spec: Any, raw: bytes | None) -> codec.Tensor:
    shape = list(spec.shape)
    if raw is not None:
        return codec.from_raw(spec.name, spec.datatype, shape, raw)
    if spec.datatype == "BYTES":
        items = list(spec.contents.bytes_contents)
        if len(items) != codec.element_count(spec.name, shape):
            raise InvalidRequestError(f"tensor {spec.name!r}: shape {shape} does not match its {len(items)} bytes_contents")
        return codec.bytes_tensor(spec.name, items, shape)
    field = _CONTENTS_FIELD.get(spec.datatype)
    if field is None:
        raise InvalidRequestError(f"tensor {spec.name!r}: {spec.datatype!r} needs raw_input_contents")
    return codec.from_json(spec.name, spec.datatype, shape, list(getattr(spec.contents, field)))


def request_from_proto(message: Any) -> InferRequest:
    raw = list(message.raw_input_contents)
    if raw and len(raw) != len(message.inputs):
        raise InvalidRequestError(f"raw_input_contents has {len(raw)} entries for {len(message.inputs)} inputs; give one per input or none")
    inputs = tuple(_input_tensor(spec, raw[i] if raw else None) for i, spec in enumerate(message.inputs))
    outputs = tuple(o.name for o in message.outputs) or None
    parameters = {key: _parameter(value) for key, value in message.parameters.items()}
    return InferRequest(message.model_name, message.model_version, message.id, inputs, outputs, parameters)


def response_to_proto(result: InferResult) -> Any:
    response = pb.ModelInferResponse(model_name=result.model_name, model_version=result.model_version, id=result.id)
    for key, value in result.parameters.items():
        _set_parameter(response.parameters[key], value)
    for tensor in result.outputs:
        response.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=list(tensor.shape))
        response.raw_output_contents.append(codec.to_raw(tensor))
    return response


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
    def __init__(self, settings: Settings, servables: ServableManager, app: web.Application) -> None:
        self._servables = servables
        self._app = app
        self._api_key = settings.api_key
        self._open_paths = settings.api_key_open_paths

    async def _authorize(self, context: grpc.aio.ServicerContext, rest_path: str) -> None:
        if self._api_key is None or rest_path.startswith(self._open_paths):
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
    async def _serving(self, trace_asked: bool) -> AsyncIterator[list[str] | None]:
        """What every inference request runs in, as on REST: its metrics scope, its trace (with
        --trace, or --trace header when the call's metadata asks), and admission. Yields the
        ids of the traces it started (None when not traced)."""
        admission = self._app[ADMISSION]
        with request_scope(self._app), trace_routes.traced(self._app, trace_asked) as trace_ids:
            async with admission.limits(admission.deadline()):
                yield trace_ids

    @staticmethod
    def _trace_asked(context: grpc.aio.ServicerContext) -> bool:
        metadata: Mapping[str, Any] = dict(context.invocation_metadata() or ())
        return trace_routes.asked(metadata.get(TRACE_METADATA))

    async def ModelInfer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._authorize(context, f"/v2/models/{request.model_name}/infer")
        try:
            async with self._serving(self._trace_asked(context)) as trace_ids:
                result = await inference.infer(self._servables, request_from_proto(request))
        except OvserveError as exc:
            await context.abort(status_code(exc), exc.message)
        except Exception:
            log.exception("ModelInfer on %s failed", request.model_name)
            await context.abort(grpc.StatusCode.INTERNAL, internal_error().message)
        response = response_to_proto(result)
        if trace_ids:  # as REST's X-Ovserve-Trace-Id: in the initial metadata, and as a parameter
            await context.send_initial_metadata(((TRACE_METADATA + "-id", ",".join(trace_ids)),))
            response.parameters[TRACE_ID_PARAMETER].string_param = ",".join(trace_ids)
        return response

    async def ModelStreamInfer(self, request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        """Requests are served concurrently as they arrive; each sends one response per piece of
        text (`triton_final_response: false`), then a final one (`true`, with `finish_reason`;
        without outputs when the request set `triton_enable_empty_final_response`, else with an
        empty `text_output`). A failed request sends one response with `error_message` (its
        `infer_response` is final too); the stream stays open for the others."""
        # Every model's infer path must be open for a stream to go without a key.
        await self._authorize(context, "/v2/models/")
        trace_asked = self._trace_asked(context)  # the call's metadata, the same for each request
        queue: asyncio.Queue[Any] = asyncio.Queue()
        tasks: set[asyncio.Task[None]] = set()

        async def serve_one(message: Any) -> None:
            try:
                request = request_from_proto(message)
                pieces = _Pieces(request)
                async with self._serving(trace_asked) as trace_ids:
                    finish = await inference.infer_stream(self._servables, request, lambda text: queue.put_nowait(pieces.response(text)))
                empty = request.parameters.get(EMPTY_FINAL_RESPONSE) is True
                queue.put_nowait(_stream_response(request, final=True, finish=finish, empty=empty, trace_ids=trace_ids))
            except OvserveError as exc:
                queue.put_nowait(_stream_error(message, exc.message))
            except Exception:
                log.exception("ModelStreamInfer on %s failed", message.model_name)
                queue.put_nowait(_stream_error(message, internal_error().message))

        def done(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            queue.put_nowait(None)  # wake the writer: it may be time to end

        async def read_requests() -> None:
            async for message in request_iterator:
                task = asyncio.get_running_loop().create_task(serve_one(message))
                tasks.add(task)
                task.add_done_callback(done)

        reader = asyncio.get_running_loop().create_task(read_requests())
        reader.add_done_callback(lambda _: queue.put_nowait(None))
        try:
            while True:
                item = await queue.get()
                if item is not None:
                    yield item
                elif reader.done() and not tasks and queue.empty():
                    break
            reader.result()  # a broken request stream ends the call with its error
        finally:
            reader.cancel()
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(reader, *tasks, return_exceptions=True)


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


async def start_grpc_server(settings: Settings, servables: ServableManager, app: web.Application) -> GrpcServer:
    """Listen on `--grpc_bind_address` (else the REST one) and `--port` (0: a free one), with TLS
    when `--ssl_certfile`/`--ssl_keyfile` are set."""
    assert settings.grpc_port is not None
    host = settings.grpc_bind_address or settings.rest_bind_address
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", settings.max_body_bytes)])
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceServicer(settings, servables, app), server)
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

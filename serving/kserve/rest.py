"""KServe v2 REST: `GET /v2`, model metadata and readiness, `POST .../infer` (JSON or the binary
tensor extension). Errors are `{"error": "..."}` with the status of the error's kind.
`/v2/health/live` and `/v2/health/ready` live in serving.health."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from graphs.errors import InvalidRequestError, OvserveError, UnavailableError
from serving import errors
from serving.errors import internal_error
from serving.frontend import CONTEXT, CORE, read_body
from serving.kserve import codec, inference
from serving.kserve.inference import InferRequest, Parameter
from serving.state import SERVABLES

_JSON = "application/json"


def _kserve_body(error: OvserveError) -> dict[str, str]:
    return {"error": error.message}  # the Open Inference Protocol's error shape


def error_response(error: OvserveError) -> web.Response:
    return errors.error_response(error, _kserve_body)


def _model(request: web.Request) -> tuple[str, str]:
    return request.match_info["name"], request.match_info.get("version", "")


async def server_metadata(request: web.Request) -> web.Response:
    return web.json_response(inference.server_metadata())


async def model_metadata(request: web.Request) -> web.Response:
    name, version = _model(request)
    try:
        servable = inference.find_model(request.app[SERVABLES], name, version)
    except OvserveError as exc:
        return error_response(exc)
    return web.json_response(inference.model_metadata(servable))


async def model_ready(request: web.Request) -> web.Response:
    """200 when ready; 503 (with the reason) while it loads, failed or the server drains."""
    name, version = _model(request)
    try:
        if inference.model_ready(request.app[SERVABLES], name, version):
            return web.json_response({"name": name, "ready": True})
    except OvserveError as exc:
        return error_response(exc)
    servable = request.app[SERVABLES].find(name)
    state = servable.state.value if servable is not None else "unknown"
    reason = "the server is shutting down" if request.app[SERVABLES].draining else state
    return error_response(UnavailableError(f"model {name!r} is not ready: {reason}"))


def _parameters(value: Any, where: str) -> dict[str, Parameter]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, bool | int | float | str) for v in value.values()):
        raise InvalidRequestError(f"{where} 'parameters' must be an object of booleans, numbers and strings")
    return value


def _requested_outputs(header: dict[str, Any]) -> tuple[str, ...] | None:
    outputs = header.get("outputs")
    if outputs is None:
        return None
    if not isinstance(outputs, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs):
        raise InvalidRequestError("'outputs' must be a list of objects with a 'name'")
    for output in outputs:
        _parameters(output.get("parameters"), f"output {output['name']!r}")
    return tuple(o["name"] for o in outputs) or None


async def _parsed(raw: bytes, header_length: str | None) -> tuple[dict[str, Any], list[codec.Tensor]]:
    if len(raw) < codec.DECODE_IN_THREAD_BYTES:
        return codec.parse_rest_request(raw, header_length)
    return await asyncio.to_thread(codec.parse_rest_request, raw, header_length)


async def infer(request: web.Request) -> web.Response:
    name, version = _model(request)
    core = request.app[CORE]
    try:
        async with core.admission.limits(request[CONTEXT].deadline):  # before the body is read (serving.admission)
            return await _infer(request, name, version)
    except OvserveError as exc:
        return error_response(exc)


async def _infer(request: web.Request, name: str, version: str) -> web.Response:
    try:
        raw = await read_body(request)
        header, inputs = await _parsed(raw, request.headers.get(codec.HEADER_LENGTH))
        request_id = header.get("id", "")
        if not isinstance(request_id, str):
            raise InvalidRequestError("'id' must be a string")
        parameters = _parameters(header.get("parameters"), "request")
        infer_request = InferRequest(name, version, request_id, tuple(inputs), _requested_outputs(header), parameters)
        result = await inference.infer(request.app[CORE], request[CONTEXT], infer_request)
    except OvserveError as exc:
        return error_response(exc)
    except Exception:
        inference.log.exception("KServe REST inference on %s failed", name)
        return error_response(internal_error())
    response: dict[str, Any] = {"model_name": result.model_name, "model_version": result.model_version}
    if result.id:
        response["id"] = result.id
    if result.parameters:
        response["parameters"] = result.parameters
    binary = [codec.wants_binary(header, t.name) for t in result.outputs]
    body, header_length = codec.rest_response(response, result.outputs, binary)
    if header_length is None:
        return web.Response(body=body, content_type=_JSON)
    return web.Response(body=body, content_type="application/octet-stream", headers={codec.HEADER_LENGTH: str(header_length)})


def add_routes(app: web.Application) -> None:
    # Model names may hold slashes: the most specific patterns come first.
    for prefix in ("/v2/models/{name:.+}/versions/{version}", "/v2/models/{name:.+}"):
        app.router.add_get(f"{prefix}/ready", model_ready)
        app.router.add_post(f"{prefix}/infer", infer)
    app.router.add_get("/v2/models/{name:.+}/versions/{version}", model_metadata)
    app.router.add_get("/v2/models/{name:.+}", model_metadata)
    app.router.add_get("/v2", server_metadata)

"""The OpenAI Responses front end: `POST /v3/responses` (and `/v1`), `GET` and `DELETE
/v3/responses/{id}`. A thin front end over the chat graph through the front-end core: the
request becomes a chat body (serving.responses.request), the graph's answer a Response object
or its event stream (serving.responses.output, .events); stored responses continue a
conversation by `previous_response_id` (serving.responses.store)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
from aiohttp import web

from calculators.packets import HttpResponsePayload, ResponseBody, StreamChunks
from graphs.errors import InvalidRequestError, NotFoundError, OvserveError
from graphs.runner import GraphRun, OutputOverflowError
from serving.errors import error_body, error_response, internal_error
from serving.frontend import (
    CONTEXT,
    CORE,
    FrontEndCore,
    JsonAnswer,
    RequestContext,
    Sender,
    SendStalledError,
    bound_unsent,
    read_json_body,
)
from serving.responses import output as out
from serving.responses import request as rq
from serving.responses.events import EventStream
from serving.responses.store import ResponseStores
from serving.servable import Servable
from serving.state import SETTINGS

log = logging.getLogger("ovserve.responses")

STORES = web.AppKey("response_stores", ResponseStores)
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_json = msgspec.json.Encoder()
_json_decode = msgspec.json.Decoder().decode


def _not_found(response_id: str, param: str | None = None) -> NotFoundError:
    return NotFoundError(f"response {response_id[:80]!r} not found (never stored, expired or deleted)", param=param)


async def create(request: web.Request) -> web.StreamResponse:
    """Admission first, before the body is read (as every generation route)."""
    core, ctx = request.app[CORE], request[CONTEXT]
    try:
        async with core.admission.slot(ctx.deadline):
            return await _create(request, core, ctx)
    except OutputOverflowError:
        raise ConnectionResetError("the client stopped reading") from None  # and was dropped: see bound_unsent
    except SendStalledError as stalled:
        return stalled.response  # dropped already (serving.frontend.Sender)


async def _create(request: web.Request, core: FrontEndCore, ctx: RequestContext) -> web.StreamResponse:
    try:
        parsed = rq.parse(await read_json_body(request))
        servable = await core.resolve(ctx, parsed.model)
        history: list[dict[str, Any]] = []
        if parsed.previous_response_id is not None:
            stored = request.app[STORES].find(parsed.previous_response_id)
            if stored is None:
                raise _not_found(parsed.previous_response_id, "previous_response_id")
            history = stored.history
        chat = rq.chat_body(parsed, history, parsed.model)
        turn = history + rq.messages(parsed)  # the conversation so far, without instructions
        response = out.envelope(parsed, out.new_id("resp"), parsed.model)
        run = core.start(ctx, servable, "chat/completions", chat)
    except OvserveError as exc:
        return error_response(exc)
    send = Sender(request, core.admission, servable.name)  # every write within --send_timeout
    try:
        async with core.admission.within(ctx.deadline):
            if parsed.stream:
                bound_unsent(run, request, core.admission, servable.name)
                return await _stream(request, send, run, parsed, response, turn, servable)
            answer = await _whole(run, servable)
            out.from_chat(parsed, response, answer)
            _keep(request, parsed, servable, response, turn)
            return JsonAnswer(_json.encode(response), send)
    except OvserveError as exc:
        return error_response(exc)
    finally:
        # shielded: a second cancellation (client gone) must not cut the nodes' close() short
        await asyncio.shield(servable.finish(run))


def _keep(
    request: web.Request, parsed: rq.ResponsesRequest, servable: Servable, response: dict[str, Any], turn: list[dict[str, Any]]
) -> None:
    if parsed.store:
        request.app[STORES].of(servable.name).put(response, turn + out.history_of(response["output"]))


def _unsupported_graph(servable: Servable) -> InvalidRequestError:
    return InvalidRequestError(
        f"model {servable.name!r} answers in its own format; the Responses API needs the stock chat graph", param="model"
    )


async def _whole(run: GraphRun, servable: Servable) -> dict[str, Any]:
    async for packet in run:
        value = packet.packet.value
        if isinstance(value, ResponseBody):
            return value.body
        if isinstance(value, HttpResponsePayload) and not value.streaming:
            body = _json_decode(value.body)
            if isinstance(body, dict):
                return body
        raise _unsupported_graph(servable)
    raise RuntimeError(f"graph of {servable.name!r} produced no response")


async def _stream(
    request: web.Request,
    send: Sender,
    run: GraphRun,
    parsed: rq.ResponsesRequest,
    response: dict[str, Any],
    turn: list[dict[str, Any]],
    servable: Servable,
) -> web.StreamResponse:
    """Events as the graph's chunks come; nothing is sent before the first chunk, so an error
    found by the graph's first nodes still gets its status."""
    events = EventStream(parsed, response)
    stream: web.StreamResponse | None = None
    try:
        async for packet in run:
            value = packet.packet.value
            if not isinstance(value, StreamChunks):
                raise _unsupported_graph(servable)
            data = b""
            if stream is None:
                stream = send.response = web.StreamResponse(headers=_SSE_HEADERS)
                await send(stream.prepare(request))
                data = events.start()
            for choice in value.choices:
                data += events.delta(choice)
            events.usage(value.usage)
            if value.done:
                data += events.end()
                _keep(request, parsed, servable, response, turn)
            if data:
                await send(stream.write(data))
            if value.done:
                break
        if stream is None:
            raise RuntimeError(f"graph of {servable.name!r} produced no response")
    except (ConnectionError, asyncio.CancelledError, OutputOverflowError):
        raise
    except Exception as exc:
        error = exc if isinstance(exc, OvserveError) else internal_error()
        if not isinstance(exc, OvserveError):
            log.exception("request to %s failed", servable.name)
        if stream is None:
            raise error from None
        await send(stream.write(events.error(error_body(error))))
    await send(stream.write_eof())
    return stream


async def retrieve(request: web.Request) -> web.Response:
    response_id = request.match_info["response_id"]
    stored = request.app[STORES].find(response_id)
    if stored is None:
        return error_response(_not_found(response_id))
    return web.Response(body=_json.encode(stored.response), content_type="application/json")


async def delete(request: web.Request) -> web.Response:
    response_id = request.match_info["response_id"]
    if not request.app[STORES].delete(response_id):
        return error_response(_not_found(response_id))
    return web.json_response({"id": response_id, "object": "response.deleted", "deleted": True})


def add_routes(app: web.Application) -> None:
    settings = app[SETTINGS]
    app[STORES] = ResponseStores(settings.responses_store_size, settings.responses_store_ttl)
    for prefix in ("/v3", "/v1"):
        app.router.add_post(f"{prefix}/responses", create)
        app.router.add_get(f"{prefix}/responses/{{response_id}}", retrieve)
        app.router.add_delete(f"{prefix}/responses/{{response_id}}", delete)

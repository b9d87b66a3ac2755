"""Anthropic's Messages API: `POST /v1/messages` (unary or streamed) and
`POST /v1/messages/count_tokens`, a front end over the chat graph through the front-end core.

The request becomes an OpenAI chat body (serving.anthropic_protocol) that the servable's own chat
graph answers; its answer and chunks become Anthropic's message and events
(serving.anthropic_encoder). Errors, those of the middlewares on these paths included (the key
check, the media type), leave in Anthropic's shape (registered in serving.guards.ERROR_SHAPES). The key may come as
`x-api-key` (serving.auth), and `anthropic-version` / `anthropic-beta` headers are accepted and
not acted on."""

from __future__ import annotations

import asyncio
import logging

import msgspec
from aiohttp import web

from calculators.packets import ResponseBody, StreamChunks
from graphs.errors import InvalidRequestError, OvserveError
from graphs.runner import OutputOverflowError
from serving import errors, guards
from serving.anthropic_encoder import MessageStream, error_body, event, message
from serving.anthropic_protocol import CountTokensRequest, MessagesRequest, chat_body, parse
from serving.errors import internal_error
from serving.frontend import CONTEXT, CORE, FrontEndCore, JsonAnswer, RequestContext, Sender, SendStalledError, bound_unsent, read_json_body

log = logging.getLogger("ovserve.anthropic")

PREFIX = "/v1/messages"
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_json = msgspec.json.Encoder()


def error_response(error: OvserveError) -> web.Response:
    return errors.error_response(error, error_body)


async def messages(request: web.Request) -> web.StreamResponse:
    """Admission before the body is read, as on the OpenAI routes (a 429 in Anthropic's shape)."""
    core, ctx = request.app[CORE], request[CONTEXT]
    try:
        async with core.admission.slot(ctx.deadline):
            return await _answer(request, core, ctx)
    except OvserveError as exc:
        return error_response(exc)
    except SendStalledError as stalled:
        return stalled.response  # dropped already (serving.frontend.Sender)


async def _answer(request: web.Request, core: FrontEndCore, ctx: RequestContext) -> web.StreamResponse:
    parsed: MessagesRequest = parse(await read_json_body(request), MessagesRequest)
    body = chat_body(parsed)
    servable = await core.resolve(ctx, parsed.model)
    run = core.start(ctx, servable, "chat/completions", body)
    stops = tuple(parsed.stop_sequences or ())
    send = Sender(request, core.admission, servable.name)  # every write within --send_timeout
    response: web.StreamResponse | None = None
    try:
        async with core.admission.within(ctx.deadline):
            if not parsed.stream:
                async for out in run:
                    value = out.packet.value
                    if not isinstance(value, ResponseBody):
                        break
                    return JsonAnswer(_json.encode(message(value.body, parsed.model, stops)), send)
                raise RuntimeError(f"graph of {servable.name!r} gave no chat completion")
            bound_unsent(run, request, core.admission, servable.name)
            stream = MessageStream(parsed.model, stops)
            async for out in run:
                chunks = out.packet.value
                if not isinstance(chunks, StreamChunks):
                    raise RuntimeError(f"graph of {servable.name!r} gave {type(chunks).__name__}, not chat chunks")
                data = stream.encode(chunks.choices, chunks.usage, chunks.done)
                if response is None:
                    response = send.response = web.StreamResponse(headers=_SSE_HEADERS)
                    await send(response.prepare(request))
                await send(response.write(data))
                if chunks.done:
                    break
        if response is None:
            raise RuntimeError(f"graph of {servable.name!r} produced no response")
    except OutputOverflowError:
        raise ConnectionResetError("the client stopped reading") from None
    except (ConnectionError, asyncio.CancelledError):
        raise
    except Exception as exc:
        error = exc if isinstance(exc, OvserveError) else internal_error()
        if not isinstance(exc, OvserveError):
            log.exception("Messages request to %s failed", servable.name)
        if response is None:
            return error_response(error)
        await send(response.write(event("error", {"error": error_body(error)["error"]})))  # headers are gone: in-band
    finally:
        await asyncio.shield(servable.finish(run))  # a cancelled handler must not cut the nodes' close() short
    await send(response.write_eof())
    return response


async def count_tokens(request: web.Request) -> web.Response:
    """The prompt's token count, from the servable's tokenizer through the chat template: what
    `usage.input_tokens` of the same request is. Under admission, in a thread, as /v3/tokenize."""
    core, ctx = request.app[CORE], request[CONTEXT]
    try:
        async with core.admission.limits(ctx.deadline):
            parsed: CountTokensRequest = parse(await read_json_body(request), CountTokensRequest)
            chat = chat_body(parsed)
            servable = await core.resolve(ctx, parsed.model)
            tokenize = next((v.tokenize_request for v in servable.side_packets.values() if hasattr(v, "tokenize_request")), None)
            if tokenize is None:
                raise InvalidRequestError(f"model {servable.name!r} has no tokenizer to count with", param="model")
            wanted = {key: chat[key] for key in ("model", "messages", "tools", "chat_template_kwargs") if key in chat}
            answer = await asyncio.to_thread(tokenize, wanted)
        return web.json_response({"input_tokens": answer["count"]})
    except OvserveError as exc:
        return error_response(exc)


def add_routes(app: web.Application) -> None:
    guards.register_shape(app, error_body, PREFIX)
    app.router.add_post(PREFIX, messages)
    app.router.add_post(f"{PREFIX}/count_tokens", count_tokens)

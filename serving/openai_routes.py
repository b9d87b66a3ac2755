"""The OpenAI front end: /v3 (and /v1) chat/completions, completions, embeddings, rerank,
models, tokenize; the graph's response values encoded as JSON or SSE."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
from aiohttp import web

from calculators.openai.tolerance import HEADER as IGNORED_HEADER
from calculators.packets import Endpoint, HttpResponsePayload, ResponseBody, ResponsePayload, StreamChunks
from graphs.errors import InvalidRequestError, OvserveError
from graphs.runner import OutputOverflowError, OutputPacket
from serving.errors import error_body, error_response, internal_error
from serving.frontend import CONTEXT, CORE, FrontEndCore, JsonAnswer, RequestContext, Sender, SendStalledError, bound_unsent, read_json_body
from serving.servable import Servable, ServableManager, State
from serving.sse_sink import HIGH_WATER_BYTES, ChunkedSink
from serving.state import SERVABLES, SETTINGS

log = logging.getLogger("ovserve.http")

_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_json = msgspec.json.Encoder()
SETTLE_S = 1.0  # a fully answered stream whose client hung up: how long its nodes may take to close


# -- encoding: the graph's response values as JSON or SSE ----------------------------------
# The stock calculators emit structured values (calculators.packets.ResponseBody, StreamChunks);
# a user's own response calculator may emit raw bytes (HttpResponsePayload), which pass through.

DONE = b"data: [DONE]\n\n"


def sse(event: dict[str, Any]) -> bytes:
    return b"data: " + _json.encode(event) + b"\n\n"


def streaming(value: ResponsePayload) -> bool:
    return isinstance(value, StreamChunks) or (isinstance(value, HttpResponsePayload) and value.streaming)


def ends_answer(value: ResponsePayload) -> bool:
    """Whether this value completes a streamed answer (`data: [DONE]`)."""
    if isinstance(value, StreamChunks):
        return value.done
    return isinstance(value, HttpResponsePayload) and value.body.endswith(DONE)


def _ends_stream(out: OutputPacket) -> bool:
    return ends_answer(out.packet.value)


class OpenAIEncoder:
    """Encodes one request's response values. A chunk's envelope (id, object, created, model)
    is encoded once per request, so per token only the choice object is. Bytes weighed for the
    backpressure bound (`weigh`) are kept until sent (`take`): each value is encoded once."""

    __slots__ = ("_frame", "_weighed")

    def __init__(self) -> None:
        self._frame: tuple[bytes, bytes] | None = None
        self._weighed: dict[int, bytes] = {}  # id(OutputPacket) -> its bytes, while it is queued

    def encode(self, value: ResponsePayload) -> bytes:
        if isinstance(value, StreamChunks):
            return self._events(value)
        if isinstance(value, ResponseBody):
            return _json.encode(value.body)
        return value.body

    def weigh(self, out: OutputPacket) -> int:
        data = self._weighed[id(out)] = self.encode(out.packet.value)
        return len(data)

    def take(self, out: OutputPacket) -> bytes:
        data = self._weighed.pop(id(out), None)
        return data if data is not None else self.encode(out.packet.value)

    def _events(self, chunks: StreamChunks) -> bytes:
        if self._frame is None:
            self._frame = _choice_frame(chunks.envelope)
        head, tail = self._frame
        events = [head + _json.encode(choice) + tail for choice in chunks.choices]
        if chunks.usage is not None:
            events.append(sse({**chunks.envelope, "choices": [], "usage": chunks.usage}))
        if chunks.done:
            events.append(DONE)
        return b"".join(events)


def _choice_frame(envelope: dict[str, Any]) -> tuple[bytes, bytes]:
    """`data: {…,"choices":[` and `]…}\\n\\n`: the bytes around one choice in every chunk."""
    marker = {"__choice__": 0}
    whole = sse({**envelope, "choices": [marker]})
    head, tail = whole.split(_json.encode(marker))
    return head, tail


# -- the routes ------------------------------------------------------------------------------


async def _read_model_request(request: web.Request) -> tuple[dict[str, Any], Servable]:
    """The JSON body and the servable its `model` names (400 without one, 404 when unknown),
    loaded (a lazy or idle-unloaded servable loads now)."""
    body = await read_json_body(request)
    servable = await request.app[CORE].resolve(request[CONTEXT], body.get("model"))
    return body, servable


async def _generate(request: web.Request, endpoint: Endpoint) -> web.StreamResponse:
    """Admission first (serving.admission: run, wait in the queue, or a 429 that the errors
    middleware renders), before the body is read, so a waiting request holds no more than
    aiohttp's read buffer."""
    core, ctx = request.app[CORE], request[CONTEXT]
    async with core.admission.slot(ctx.deadline):
        try:
            return await _generate_admitted(request, endpoint, core, ctx)
        except SendStalledError as stalled:
            # Dropped already: aiohttp finds the connection closed as it ends the response (an
            # exception would be logged as an error).
            return stalled.response


async def _generate_admitted(request: web.Request, endpoint: Endpoint, core: FrontEndCore, ctx: RequestContext) -> web.StreamResponse:
    try:
        body, servable = await _read_model_request(request)
        run = core.start(ctx, servable, endpoint, body)
    except OvserveError as exc:
        return error_response(exc)
    admission = core.admission
    encoder = OpenAIEncoder()
    bound_unsent(run, request, admission, servable.name, encoder.weigh)
    send = Sender(request, admission, servable.name)

    response: web.StreamResponse | None = None
    sink: ChunkedSink | None = None
    answered = False  # the whole streamed answer has been written (handler or sink)
    try:
        async with admission.within(ctx.deadline):  # --request_timeout: the engine request is dropped with the run
            async for out in run:
                value: ResponsePayload = out.packet.value
                if not streaming(value):
                    return JsonAnswer(encoder.take(out), send, _ignored_header(ctx))
                if response is None:
                    response = send.response = web.StreamResponse(headers={**_SSE_HEADERS, **_ignored_header(ctx)})
                    if request.version >= (1, 1) and request.transport is not None:
                        response.enable_chunked_encoding()
                    await send(response.prepare(request))
                    await send(response.write(encoder.take(out)))
                    if response.chunked and request.transport is not None:
                        high_water = min(HIGH_WATER_BYTES, request.app[SETTINGS].max_unsent_bytes)
                        sink = ChunkedSink(request.transport, encoder.take, _ends_stream, high_water)  # type: ignore[arg-type]
                        run.set_sink(sink)
                    answered = ends_answer(value)
                    continue
                await send(response.write(encoder.take(out)))
                answered = ends_answer(value)
        if response is None:  # the graph ended without an answer: our bug, not the client's
            raise RuntimeError(f"graph of {servable.name!r} produced no response")
    except (ConnectionResetError, ConnectionError):
        log.debug("client went away; request cancelled")
        raise
    except asyncio.CancelledError:
        # A client that hangs up as soon as it reads `data: [DONE]` (the OpenAI SDK does) cancels
        # this handler while the nodes are still closing by themselves: let them, briefly, rather
        # than cancel a request that has ended.
        if answered or (sink is not None and sink.answered):
            await asyncio.shield(run.settle(SETTLE_S))
        raise
    except OutputOverflowError:
        raise ConnectionResetError("the client stopped reading") from None  # and was dropped: see bound_unsent
    except Exception as exc:
        error = exc if isinstance(exc, OvserveError) else internal_error()
        if not isinstance(exc, OvserveError):
            log.exception("request to %s failed", servable.name)
        if response is None:
            return error_response(error)
        # Headers are gone: report in-band, as vLLM does, then end the stream properly (the
        # graph, still open after a timeout, writes no more chunks of its own).
        run.set_sink(None)
        await send(response.write(sse(error_body(error)) + DONE))
    finally:
        # shielded: a second cancellation (client gone) must not cut the nodes' close() short
        await asyncio.shield(servable.finish(run))
    await send(response.write_eof())
    return response


def _ignored_header(ctx: RequestContext) -> dict[str, str]:
    """The request fields that had no effect (calculators.openai.tolerance), as a header."""
    value = ctx.ignored.header()
    return {IGNORED_HEADER: value} if value else {}


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _generate(request, "chat/completions")


async def completions(request: web.Request) -> web.StreamResponse:
    return await _generate(request, "completions")


async def embeddings(request: web.Request) -> web.StreamResponse:
    return await _generate(request, "embeddings")


async def rerank(request: web.Request) -> web.StreamResponse:
    return await _generate(request, "rerank")


def _model_card(servable: Any, name: str) -> dict[str, Any]:
    card = {"id": name, "object": "model", "created": servable.created, "owned_by": "ovserve"}
    if name != servable.name:  # a LoRA adapter: served on this base model's engine
        card["parent"] = servable.name
    return card


async def list_models(request: web.Request) -> web.Response:
    manager: ServableManager = request.app[SERVABLES]
    data = [_model_card(s, name) for s in manager if s.state in (State.AVAILABLE, State.IDLE) for name in s.served_names()]
    return web.json_response({"object": "list", "data": data})


async def get_model(request: web.Request) -> web.Response:
    name = request.match_info["model"]
    try:
        servable = request.app[SERVABLES].get(name)
    except OvserveError as exc:
        return error_response(exc)
    return web.json_response(_model_card(servable, name))


async def _codec(request: web.Request, method: str) -> web.Response:
    """`/tokenize` and `/detokenize`: answered by the servable's side packet that offers them
    (the LLM resource: same template, tokenizer and prompt bounds as generation). Under
    admission like generation (a flood of them is queued or refused, not run at once), and in a
    thread: template rendering and validation then yield the GIL to the event loop every few ms
    (genai's encode holds it, but only for a prompt within the bounds)."""
    admission, deadline = request.app[CORE].admission, request[CONTEXT].deadline
    async with admission.slot(deadline):
        try:
            body, servable = await _read_model_request(request)
            model = servable.name
            handler = next((getattr(v, method) for v in servable.side_packets.values() if hasattr(v, method)), None)
            if handler is None:
                raise InvalidRequestError(f"model {model!r} has no tokenizer to {method.split('_')[0]} with", param="model")
            async with admission.within(deadline):
                answer = await asyncio.to_thread(handler, body)
            return web.Response(body=_json.encode(answer), content_type="application/json")
        except OvserveError as exc:
            return error_response(exc)


async def tokenize(request: web.Request) -> web.Response:
    return await _codec(request, "tokenize_request")


async def detokenize(request: web.Request) -> web.Response:
    return await _codec(request, "detokenize_request")


def add_routes(app: web.Application) -> None:
    for prefix in ("/v3", "/v1"):
        app.router.add_post(f"{prefix}/chat/completions", chat_completions)
        app.router.add_post(f"{prefix}/completions", completions)
        app.router.add_post(f"{prefix}/embeddings", embeddings)
        app.router.add_get(f"{prefix}/models", list_models)
        app.router.add_post(f"{prefix}/tokenize", tokenize)
        app.router.add_post(f"{prefix}/detokenize", detokenize)
        app.router.add_get(f"{prefix}/models/{{model:.+}}", get_model)
    app.router.add_post("/v3/rerank", rerank)  # OVMS's; /v1/rerank is Cohere's (serving.cohere)

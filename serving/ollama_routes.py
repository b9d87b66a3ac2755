"""Ollama's native API, a front end over the front-end core: /api/chat and /api/generate
(NDJSON streaming by default), /api/embed and /api/embeddings, /api/tags, /api/show, /api/ps,
/api/version, /api/pull (for models already served), and `/` ("Ollama is running").

Requests become OpenAI bodies (serving.ollama_request) for the servables' own graphs; their
streamed values become Ollama's lines (serving.ollama_encoder). Errors are Ollama's
`{"error": "..."}` with the status of the error's kind. The same routes answer on the main port
and, with --ollama_port, on a second one (serving.server), so Ollama clients need no change.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from graphs.errors import InvalidRequestError, NotFoundError, OvserveError
from graphs.runner import GraphRun, OutputOverflowError
from serving import errors, guards, ollama_models, ollama_request
from serving.frontend import CONTEXT, CORE, FrontEndCore, JsonAnswer, Sender, SendStalledError, bound_unsent
from serving.ollama_encoder import OllamaAnswer, line, loaded, ns
from serving.ollama_request import GraphRequest
from serving.state import SERVABLES, SETTINGS

log = logging.getLogger("ovserve.ollama")

NDJSON = "application/x-ndjson"
RUNNING = "Ollama is running"


def _ollama_body(error: OvserveError) -> dict[str, str]:
    return {"error": error.message}


def error_response(error: OvserveError) -> web.Response:
    return errors.error_response(error, _ollama_body)


async def _read_json(request: web.Request) -> dict[str, Any]:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SETTINGS].max_body_bytes
        raise errors.RequestTooLargeError(f"request body is larger than the limit of {limit} bytes") from None
    return errors.json_object(raw, "request body")


def _json(obj: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(status=status, body=line(obj), content_type="application/json")


async def _answer(request: web.Request, translate: Callable[[dict[str, Any]], GraphRequest]) -> web.StreamResponse:
    """/api/chat and /api/generate: admission before the body is read, then the graph, always
    streamed inside (so the first token's time is known); one object or NDJSON lines out."""
    core, ctx = request.app[CORE], request[CONTEXT]
    try:
        async with core.admission.slot(ctx.deadline):
            asked = translate(await _read_json(request))
            servable = await core.resolve(ctx, asked.model)
            if asked.load_only:
                return _json(loaded(asked.model, asked.message))
            run = core.start(ctx, servable, asked.endpoint, asked.body)
            try:
                async with core.admission.within(ctx.deadline):
                    answer = OllamaAnswer(asked.model, asked.message, ctx.arrived, texts=asked.endpoint == "completions")
                    if not asked.stream:
                        async for out in run:
                            answer.pieces(out.packet.value)
                            if answer.done:
                                return JsonAnswer(line(answer.whole()), Sender(request, core.admission, servable.name))
                        raise RuntimeError(f"graph of {servable.name!r} ended without an answer")
                    return await _stream(request, core, run, answer)
            finally:
                await asyncio.shield(servable.finish(run))  # the nodes' close() runs whatever happens
    except OvserveError as exc:
        return error_response(exc)
    except OutputOverflowError:
        raise ConnectionResetError("the client stopped reading") from None
    except SendStalledError as stalled:
        return stalled.response  # dropped already (serving.frontend.Sender)


async def _stream(request: web.Request, core: FrontEndCore, run: GraphRun, answer: OllamaAnswer) -> web.StreamResponse:
    """NDJSON lines. Nothing is sent before the first piece, so a refused request keeps its
    status; an error after that is a last `{"error": ...}` line, as Ollama sends it."""
    model = request[CONTEXT].model
    bound_unsent(run, request, core.admission, model)
    send = Sender(request, core.admission, model)
    response: web.StreamResponse | None = None
    try:
        async for out in run:
            lines = b"".join(line(piece) for piece in answer.pieces(out.packet.value))
            if response is None and (lines or answer.done):
                response = send.response = web.StreamResponse(headers={"Content-Type": NDJSON, "Cache-Control": "no-cache"})
                await send(response.prepare(request))
            if lines:
                await send(response.write(lines))  # type: ignore[union-attr]
            if answer.done:
                break
        if response is None:
            raise RuntimeError("the graph ended without an answer")
        await send(response.write(line(answer.final())))
    except OvserveError as exc:
        if response is None:
            raise
        await send(response.write(line(_ollama_body(exc))))
    except (ConnectionError, asyncio.CancelledError, OutputOverflowError):
        raise
    except Exception:
        log.exception("Ollama request to %s failed", answer.model)
        if response is None:
            raise
        await send(response.write(line(_ollama_body(errors.internal_error()))))
    await send(response.write_eof())
    return response


async def chat(request: web.Request) -> web.StreamResponse:
    return await _answer(request, ollama_request.chat)


async def generate(request: web.Request) -> web.StreamResponse:
    return await _answer(request, ollama_request.generate)


async def _embeddings(request: web.Request, translate: Callable[[dict[str, Any]], GraphRequest]) -> dict[str, Any]:
    core, ctx = request.app[CORE], request[CONTEXT]
    async with core.admission.slot(ctx.deadline):
        asked = translate(await _read_json(request))
        servable = await core.resolve(ctx, asked.model)
        if "embedding" not in ollama_models.capabilities(servable):
            raise InvalidRequestError(f'"{asked.model}" does not support embeddings', param="model")
        run = core.start(ctx, servable, asked.endpoint, asked.body)
        try:
            async with core.admission.within(ctx.deadline):
                async for out in run:
                    body = getattr(out.packet.value, "body", None)
                    if isinstance(body, dict):
                        return body
        finally:
            await asyncio.shield(servable.finish(run))
    raise RuntimeError(f"graph of {asked.model!r} produced no embeddings")


async def embed(request: web.Request) -> web.Response:
    arrived = request[CONTEXT].arrived
    try:
        body = await _embeddings(request, ollama_request.embed)
    except OvserveError as exc:
        return error_response(exc)
    rows = [d["embedding"] for d in sorted(body.get("data", []), key=lambda d: d["index"])]
    prompt_tokens = int((body.get("usage") or {}).get("prompt_tokens") or 0)
    total = ns(time.perf_counter() - arrived)
    out = {
        "model": body.get("model", ""),
        "embeddings": rows,
        "total_duration": total,
        "load_duration": 0,
        "prompt_eval_count": prompt_tokens,
    }
    return _json(out)


async def embeddings(request: web.Request) -> web.Response:
    try:
        body = await _embeddings(request, ollama_request.embeddings)
    except OvserveError as exc:
        return error_response(exc)
    data = body.get("data") or [{}]
    return _json({"embedding": data[0].get("embedding", [])})


async def tags(request: web.Request) -> web.Response:
    return _json(ollama_models.tags(request.app[SERVABLES]))


async def ps(request: web.Request) -> web.Response:
    return _json(ollama_models.running(request.app[SERVABLES]))


async def version(request: web.Request) -> web.Response:
    return _json({"version": ollama_models.OLLAMA_API_VERSION})


async def _named(request: web.Request) -> tuple[str, Any]:
    body = await _read_json(request)
    name = body.get("model") or body.get("name")  # older clients send `name`
    if not isinstance(name, str) or not name:
        raise InvalidRequestError("model is required", param="model")
    return name, body


async def show(request: web.Request) -> web.Response:
    try:
        name, _ = await _named(request)
        servable = request.app[SERVABLES].get(name)
        request[CONTEXT].model = servable.name
    except OvserveError as exc:
        return error_response(exc)
    return _json(ollama_models.show(servable, name))


async def pull(request: web.Request) -> web.StreamResponse:
    """A model this server serves "pulls" at once; any other is refused: the pull mode
    (`ovserve --pull`) exports Hugging Face models, not Ollama's registry's."""
    try:
        name, body = await _named(request)
        servable = request.app[SERVABLES].find(name)
        if servable is None:
            raise NotFoundError(
                f'model "{name}" is not served here, and ovserve does not pull from the Ollama registry: '
                "add it with `ovserve --pull --source_model <Hugging Face id>` and a config entry"
            )
    except OvserveError as exc:
        return error_response(exc)
    lines = ollama_models.pull_lines(servable)
    if body.get("stream") is False:
        return _json(lines[-1])
    return web.Response(body=b"".join(line(x) for x in lines), content_type=NDJSON)


async def root(request: web.Request) -> web.Response:
    return web.Response(text=RUNNING)


def add_routes(app: web.Application) -> None:
    app.setdefault(guards.ERROR_SHAPES, {})["/api"] = _ollama_body  # the key's and media type's refusals too
    router = app.router
    router.add_post("/api/chat", chat)
    router.add_post("/api/generate", generate)
    router.add_post("/api/embed", embed)
    router.add_post("/api/embeddings", embeddings)
    router.add_get("/api/tags", tags)
    router.add_get("/api/ps", ps)
    router.add_get("/api/version", version)
    router.add_post("/api/show", show)
    router.add_post("/api/pull", pull)
    if not any(getattr(r, "canonical", None) == "/" for r in router.resources()):  # `/` may be another API's
        router.add_get("/", root)

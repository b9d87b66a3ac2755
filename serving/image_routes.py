"""The images front end: `POST /v3/images/generations` (JSON) and `/v3/images/edits` (multipart
form), with `/v1` aliases, over the servable's graph (OVMS's ImageGenCalculator). A thin layer:
the body is read (the form under --max_body_bytes), the model resolved and the graph run under
admission as every generation; the calculator's answer is sent as JSON. A client that hangs up
cancels the run, which stops the engine at its next denoising step."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
from aiohttp import web

from calculators.openai.tolerance import HEADER as IGNORED_HEADER
from calculators.packets import Endpoint, ResponseBody
from graphs.errors import OvserveError
from serving.errors import error_response, internal_error
from serving.frontend import CONTEXT, CORE, JsonAnswer, Sender, read_json_body
from serving.multipart_form import read_form

log = logging.getLogger("ovserve.http")
_json = msgspec.json.Encoder()


async def _images(request: web.Request, endpoint: Endpoint) -> web.StreamResponse:
    core, ctx = request.app[CORE], request[CONTEXT]
    async with core.admission.slot(ctx.deadline):
        try:
            body: dict[str, Any] = await (read_form(request) if endpoint == "images/edits" else read_json_body(request))
            servable = await core.resolve(ctx, body.get("model"))
            run = core.start(ctx, servable, endpoint, body)
        except OvserveError as exc:
            return error_response(exc)
        send = Sender(request, core.admission, servable.name)
        try:
            async with core.admission.within(ctx.deadline):
                async for out in run:
                    value = out.packet.value
                    if not isinstance(value, ResponseBody):
                        raise TypeError(f"graph of {servable.name!r} answered {type(value).__name__}, not a JSON body")
                    ignored = ctx.ignored.header()
                    return JsonAnswer(_json.encode(value.body), send, {IGNORED_HEADER: ignored} if ignored else None)
            raise RuntimeError(f"graph of {servable.name!r} produced no response")
        except OvserveError as exc:
            return error_response(exc)
        except Exception:
            log.exception("request to %s failed", servable.name)
            return error_response(internal_error())
        finally:
            await asyncio.shield(servable.finish(run))


async def generations(request: web.Request) -> web.StreamResponse:
    return await _images(request, "images/generations")


async def edits(request: web.Request) -> web.StreamResponse:
    return await _images(request, "images/edits")


def add_routes(app: web.Application) -> None:
    for prefix in ("/v3", "/v1"):
        app.router.add_post(f"{prefix}/images/generations", generations)
        app.router.add_post(f"{prefix}/images/edits", edits)

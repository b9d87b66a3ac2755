"""The images front end: `POST /v3/images/generations` (JSON) and `/v3/images/edits` (multipart
form), with `/v1` aliases, over the servable's graph (OVMS's ImageGenCalculator). A thin layer:
the body is read (the form under --max_body_bytes), the model resolved and the graph run under
admission as every generation; the calculator's answer is sent as JSON. A client that hangs up
cancels the run, which stops the engine at its next denoising step."""

from __future__ import annotations

import msgspec
from aiohttp import web

from calculators.openai.tolerance import HEADER as IGNORED_HEADER
from calculators.packets import ResponseBody
from serving.frontend import JsonAnswer, RequestContext, Sender, read_json_body
from serving.multipart_form import read_form
from serving.whole_answer import whole_answer

_json = msgspec.json.Encoder()


def _json_answer(value: ResponseBody, send: Sender, ctx: RequestContext) -> web.StreamResponse:
    ignored = ctx.ignored.header()
    return JsonAnswer(_json.encode(value.body), send, {IGNORED_HEADER: ignored} if ignored else None)


async def generations(request: web.Request) -> web.StreamResponse:
    return await whole_answer(request, "images/generations", read_json_body, ResponseBody, _json_answer)


async def edits(request: web.Request) -> web.StreamResponse:
    return await whole_answer(request, "images/edits", read_form, ResponseBody, _json_answer)


def add_routes(app: web.Application) -> None:
    for prefix in ("/v3", "/v1"):
        app.router.add_post(f"{prefix}/images/generations", generations)
        app.router.add_post(f"{prefix}/images/edits", edits)

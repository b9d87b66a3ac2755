"""The images front end: `POST /v3/images/generations` (JSON) and `/v3/images/edits` (multipart
form), with `/v1` aliases, over the servable's graph (OVMS's ImageGenCalculator). A thin layer:
the body is read (the form under --max_body_bytes), the model resolved and the graph run under
admission as every generation; the calculator's answer is sent as JSON. A client that hangs up
cancels the run, which stops the engine at its next denoising step.

`response_format: "url"` is the front end's (the calculator stays HTTP-free and answers
b64_json): with the image store on (--image_url_store_mb > 0) the graph is asked for b64_json and
each PNG is kept in the server's ImageStore (serving/image_store.py), its `url` absolute from the
request's scheme and Host, `GET /v3/images/files/{id}.png` serving it until it expires or is
evicted. With the store off the graph sees "url" and refuses it (400 naming response_format)."""

from __future__ import annotations

import base64
import math
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from calculators.openai.tolerance import HEADER as IGNORED_HEADER
from calculators.packets import Endpoint, ResponseBody
from graphs.errors import InvalidRequestError, NotFoundError
from serving.errors import error_response
from serving.frontend import JsonAnswer, RequestContext, Sender, read_json_body
from serving.image_store import IMAGE_STORE, ImageStore
from serving.multipart_form import read_form
from serving.state import SETTINGS
from serving.whole_answer import whole_answer

_json = msgspec.json.Encoder()
URL = "url"
Reader = Callable[[web.Request], Awaitable[dict[str, Any]]]


def _json_answer(value: ResponseBody, send: Sender, ctx: RequestContext) -> web.StreamResponse:
    ignored = ctx.ignored.header()
    return JsonAnswer(_json.encode(value.body), send, {IGNORED_HEADER: ignored} if ignored else None)


def _url_answer(request: web.Request, store: ImageStore, value: ResponseBody, send: Sender, ctx: RequestContext) -> web.StreamResponse:
    """The answer with each image's b64_json swapped for a URL to it in `store`."""
    body: dict[str, Any] = dict(value.body)
    pngs = [base64.b64decode(item["b64_json"]) for item in body["data"]]
    total = sum(len(png) for png in pngs)
    if total > store.max_bytes:  # kept whole or not at all: no answer with URLs evicted already
        return error_response(
            InvalidRequestError(
                f"the answer's images take {total} bytes, more than the URL store's {store.max_bytes} "
                "(--image_url_store_mb): ask for response_format 'b64_json', or fewer or smaller images",
                param="response_format",
            )
        )
    prefix = "/v1" if request.path.startswith("/v1/") else "/v3"
    origin = str(request.url.origin())
    body["data"] = [{URL: f"{origin}{prefix}/images/files/{store.put(png)}.png"} for png in pngs]
    return _json_answer(ResponseBody(body), send, ctx)


async def _images(request: web.Request, endpoint: Endpoint, read: Reader) -> web.StreamResponse:
    store = request.app.get(IMAGE_STORE)
    wants_url = False

    async def read_body(request: web.Request) -> dict[str, Any]:
        """`read`, asking the graph for b64_json where the client asked for url and the store is on."""
        nonlocal wants_url
        body = await read(request)
        if store is not None and body.get("response_format") == URL:
            body["response_format"] = "b64_json"
            wants_url = True
        return body

    def answer(value: ResponseBody, send: Sender, ctx: RequestContext) -> web.StreamResponse:
        if wants_url and store is not None:
            return _url_answer(request, store, value, send, ctx)
        return _json_answer(value, send, ctx)

    return await whole_answer(request, endpoint, read_body, ResponseBody, answer)


async def generations(request: web.Request) -> web.StreamResponse:
    return await _images(request, "images/generations", read_json_body)


async def edits(request: web.Request) -> web.StreamResponse:
    return await _images(request, "images/edits", read_form)


async def image_file(request: web.Request) -> web.StreamResponse:
    """A stored image, private to the client (max-age: the seconds it has left); 404 once gone."""
    store = request.app.get(IMAGE_STORE)
    found = store.get(request.match_info["image_id"]) if store is not None else None
    if found is None:
        return error_response(
            NotFoundError("no such image: image URLs last --image_url_ttl_s, the least recently used evicted first", param="image_id")
        )
    png, left = found
    return web.Response(body=png, content_type="image/png", headers={"Cache-Control": f"private, max-age={math.ceil(left)}"})


def add_routes(app: web.Application) -> None:
    settings = app[SETTINGS]
    if settings.image_url_store_mb > 0:
        app[IMAGE_STORE] = ImageStore(settings.image_url_store_mb * 1024 * 1024, settings.image_url_ttl_s)
    for prefix in ("/v3", "/v1"):
        app.router.add_post(f"{prefix}/images/generations", generations)
        app.router.add_post(f"{prefix}/images/edits", edits)
        app.router.add_get(f"{prefix}/images/files/{{image_id}}.png", image_file)

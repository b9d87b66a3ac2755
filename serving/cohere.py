"""Cohere's rerank API, as the `cohere` SDK speaks it: `cohere.Client` posts the v1 shape to
`/v1/rerank`, `cohere.ClientV2` the v2 shape to `/v2/rerank` (relative to its `base_url`; with
OVMS's documented `base_url=".../v3"` they land on `/v3/v1/rerank` and `/v3/v2/rerank`, served too).

A thin front end over the servable's rerank graph (RerankCalculatorOV): the body is mapped onto
the graph's request (the same one `/v3/rerank` takes), the graph's ranked results are wrapped in
Cohere's envelope (`id`, `results`, `meta`), and errors leave as Cohere's `{"message": ...}`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from typing import Any, Literal

import msgspec
from aiohttp import web

from calculators.packets import HttpResponsePayload, ResponseBody
from graphs.errors import InvalidRequestError, OvserveError
from serving import errors, guards
from serving.errors import internal_error
from serving.frontend import CONTEXT, CORE, FrontEndCore, RequestContext, read_json_body
from serving.servable import Servable

Version = Literal["1", "2"]
# Cohere bills a search unit per query over up to 100 documents.
DOCUMENTS_PER_SEARCH_UNIT = 100
# Fields the SDKs may send that change nothing here: documents are neither chunked nor truncated
# (a query and document over the model's length are a 400), and there is no priority queue.
_ACCEPTED = frozenset({"max_chunks_per_doc", "max_tokens_per_doc", "priority", "relevant_spans"})
_PASSED = ("model", "query", "documents", "top_n", "return_documents")
_json = msgspec.json.Encoder()
log = logging.getLogger("ovserve.cohere")


def _cohere_body(error: OvserveError) -> dict[str, str]:
    return {"message": error.message}  # Cohere's error shape


def error_response(error: OvserveError) -> web.Response:
    return errors.error_response(error, _cohere_body)


def graph_request(body: dict[str, Any], version: Version) -> dict[str, Any]:
    """The rerank graph's request (the body `/v3/rerank` takes) for a Cohere v1 or v2 body. The
    graph validates the values (a 400 naming the field); here only what it does not know."""
    unknown = sorted(set(body) - set(_PASSED) - _ACCEPTED - {"rank_fields"})
    if unknown:
        raise InvalidRequestError(f"unknown field {unknown[0]!r} in a v{version} rerank request", param=unknown[0])
    rank_fields = body.get("rank_fields")
    if rank_fields not in (None, ["text"]):
        raise InvalidRequestError("rank_fields: only the documents' 'text' is ranked here", param="rank_fields")
    for name in ("max_chunks_per_doc", "max_tokens_per_doc"):
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise InvalidRequestError(f"{name} must be a positive integer", param=name)
    request = {name: body[name] for name in _PASSED if body.get(name) is not None}
    if version == "2" and "model" not in request:
        raise InvalidRequestError("missing required field: model", param="model")
    return request


def cohere_answer(graph_answer: dict[str, Any], version: Version, documents: int) -> dict[str, Any]:
    """The graph's `{"results": [...], "model": ...}` in Cohere's envelope."""
    return {
        "id": str(uuid.uuid4()),
        "results": graph_answer["results"],
        "meta": {
            "api_version": {"version": version},
            "billed_units": {"search_units": max(1, math.ceil(documents / DOCUMENTS_PER_SEARCH_UNIT))},
        },
    }


async def _ranked(core: FrontEndCore, ctx: RequestContext, servable: Servable, body: dict[str, Any]) -> dict[str, Any]:
    """One run of the servable's graph on a rerank request: its answer object."""
    run = core.start(ctx, servable, "rerank", body)
    try:
        async for out in run:
            value = out.packet.value
            answer = value.body if isinstance(value, ResponseBody) else None
            if isinstance(value, HttpResponsePayload):  # a user's own response calculator
                answer = msgspec.json.decode(value.body)
            if not isinstance(answer, dict) or not isinstance(answer.get("results"), list):
                raise RuntimeError(f"graph of {servable.name!r} answered no rerank results")
            return answer
    finally:
        await asyncio.shield(servable.finish(run))  # a cancelled client must not cut close() short
    raise RuntimeError(f"graph of {servable.name!r} produced no response")


async def _rerank(request: web.Request, version: Version) -> web.Response:
    core, ctx = request.app[CORE], request[CONTEXT]
    try:
        async with core.admission.slot(ctx.deadline):  # before the body is read (serving.admission)
            body = graph_request(await read_json_body(request), version)
            servable = await core.resolve(ctx, body.get("model"))
            async with core.admission.within(ctx.deadline):
                answer = await _ranked(core, ctx, servable, body)
    except OvserveError as exc:
        return error_response(exc)
    except Exception:
        log.exception("Cohere rerank failed")
        return error_response(internal_error())
    documents = body["documents"]
    return web.Response(body=_json.encode(cohere_answer(answer, version, len(documents))), content_type="application/json")


async def rerank_v1(request: web.Request) -> web.Response:
    return await _rerank(request, "1")


async def rerank_v2(request: web.Request) -> web.Response:
    return await _rerank(request, "2")


def add_routes(app: web.Application) -> None:
    for prefix in ("", "/v3"):  # "/v3": the SDK given OVMS's base_url (".../v3")
        app.router.add_post(f"{prefix}/v1/rerank", rerank_v1)
        app.router.add_post(f"{prefix}/v2/rerank", rerank_v2)
        # the key's, media type's, 404/405 and 413 refusals in Cohere's shape too
        guards.register_shape(app, _cohere_body, f"{prefix}/v1/rerank", f"{prefix}/v2/rerank")

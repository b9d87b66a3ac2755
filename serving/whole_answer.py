"""One request, one whole answer: the handler the images and text-to-speech front ends share
(serving/image_routes.py, serving/speech_routes.py).

An admission slot is taken, the body read, the model resolved and the graph started; its first
output, which must be a `kind`, becomes the response (written by aiohttp after the handler
returns, within --send_timeout through the `Sender`). A client that hangs up cancels the run;
the servable's finish is shielded so the nodes close either way."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from calculators.packets import Endpoint
from graphs.errors import OvserveError
from serving.errors import error_response, internal_error
from serving.frontend import CONTEXT, CORE, RequestContext, Sender

log = logging.getLogger("ovserve.http")

T = TypeVar("T")


async def whole_answer(
    request: web.Request,
    endpoint: Endpoint,
    read: Callable[[web.Request], Awaitable[dict[str, Any]]],
    kind: type[T],
    answer: Callable[[T, Sender, RequestContext], web.StreamResponse],
) -> web.StreamResponse:
    core, ctx = request.app[CORE], request[CONTEXT]
    async with core.admission.slot(ctx.deadline):
        try:
            body = await read(request)
            servable = await core.resolve(ctx, body.get("model"))
            run = core.start(ctx, servable, endpoint, body)
        except OvserveError as exc:
            return error_response(exc)
        send = Sender(request, core.admission, servable.name)
        try:
            async with core.admission.within(ctx.deadline):
                async for out in run:
                    value = out.packet.value
                    if not isinstance(value, kind):
                        raise TypeError(f"graph of {servable.name!r} answered {type(value).__name__}, not {kind.__name__}")
                    return answer(value, send, ctx)
            raise RuntimeError(f"graph of {servable.name!r} produced no {kind.__name__}")
        except OvserveError as exc:
            return error_response(exc)
        except Exception:
            log.exception("request to %s failed", servable.name)
            return error_response(internal_error())
        finally:
            await asyncio.shield(servable.finish(run))

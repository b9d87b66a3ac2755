"""llama.cpp's server extras, in llama-server's shapes, for clients written against it:
`GET /health`, `GET /props`, and the root `POST /tokenize` / `POST /detokenize`.

The model is the one `?model=` (props) or the body's `model` names, else the first text-generation
servable (llama-server serves one model). Tokenizing uses that servable's own tokenizer and prompt
bounds (calculators.llm.resource.LLMResource), under admission and in a thread as `/v3/tokenize`
is. Errors are llama-server's `{"error": {"code", "message", "type"}}`, with honest codes where
llama-server answers 500 (a body that is not JSON, a token id out of the vocabulary).
"""

from __future__ import annotations

import asyncio
import json
from importlib import metadata
from typing import Any

import msgspec
from aiohttp import web

from calculators.openai.tokenize import check_detokenize_size, check_token_ids
from graphs.errors import InvalidRequestError, NotFoundError, OvserveError
from serving import errors, guards
from serving.frontend import CONTEXT, CORE, RequestContext, read_json_body
from serving.kserve.inference import kind_of
from serving.servable import Servable
from serving.state import SERVABLES

# llama-server's error types by status (its format_error_response); it has none for 405, 413, 415
# or 429, which take the nearest.
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "unavailable_error",
    501: "not_supported_error",
    503: "unavailable_error",
}
_json = msgspec.json.Encoder()


def _llama_body(error: OvserveError) -> dict[str, object]:
    status = errors.status_of(error)
    kind = _TYPES.get(status, "server_error")
    return {"error": {"code": status, "message": error.message, "type": kind}}


def error_response(error: OvserveError) -> web.Response:
    return errors.error_response(error, _llama_body)


def _answer(body: object) -> web.Response:
    return web.Response(body=_json.encode(body), content_type="application/json")


async def health(request: web.Request) -> web.Response:
    """200 `{"status": "ok"}` once every servable has loaded; llama-server's 503 before."""
    if request.app[SERVABLES].ready:
        return _answer({"status": "ok"})
    body = {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}
    return web.Response(status=503, body=_json.encode(body), content_type="application/json")


def _llm(servable: Servable) -> Any:
    """The servable's LLM resource (tokenizer, prompt policy, options), or a 400."""
    found = next((v for v in servable.side_packets.values() if hasattr(v, "tokenize_request")), None)
    if found is None:
        raise InvalidRequestError(f"model {servable.name!r} is not a text-generation model", param="model")
    return found


async def _servable(request: web.Request, ctx: RequestContext, model: object) -> Servable:
    """The servable `model` names, else the first text-generation one; loaded."""
    core = request.app[CORE]
    if model is None:
        model = next((s.name for s in request.app[SERVABLES] if kind_of(s) == "text_generation"), None)
        if model is None:
            raise NotFoundError("no text-generation model is served")
    return await core.resolve(ctx, model)


def _generation_defaults(model_dir: Any) -> dict[str, Any]:
    """The sampling a request without sampling fields gets: the model's generation_config.json over
    genai's defaults (greedy)."""
    path = model_dir / "generation_config.json"
    saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    sampled = bool(saved.get("do_sample"))
    return {
        "temperature": float(saved.get("temperature", 1.0)) if sampled else 0.0,
        "top_k": int(saved.get("top_k", 0)) if sampled else 0,
        "top_p": float(saved.get("top_p", 1.0)) if sampled else 1.0,
        "repeat_penalty": float(saved.get("repetition_penalty", 1.0)),
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "seed": -1,
        "ignore_eos": False,
        "stream": False,
    }


async def props(request: web.Request) -> web.Response:
    """The model's settings as llama-server's `/props` gives them."""
    ctx = request[CONTEXT]
    try:
        servable = await _servable(request, ctx, request.query.get("model"))
        llm = _llm(servable)
    except OvserveError as exc:
        return error_response(exc)
    options, tokenizer = llm.options, llm.tokenizer
    n_ctx = tokenizer.context_length or 0
    defaults = _generation_defaults(llm.model_dir)
    defaults.update(max_tokens=options.max_tokens_limit, n_predict=options.max_tokens_limit)
    body = {
        "default_generation_settings": {"params": defaults, "n_ctx": n_ctx},
        "total_slots": options.max_num_seqs,
        "model_alias": servable.name,
        "model_path": str(llm.model_dir),
        "modalities": {"vision": llm.vision is not None, "audio": False, "video": False},
        "chat_template": tokenizer.chat_template or "",
        "bos_token": tokenizer.bos_token,
        "eos_token": tokenizer.eos_token,
        "build_info": f"ovserve {metadata.version('ovserve')}",
    }
    return _answer(body)


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise InvalidRequestError(f"{name} must be true or false", param=name)
    return value


def _piece(token: bytes) -> str | list[int]:
    """A token's text; its bytes as a list when they are not UTF-8 on their own (llama-server's rule)."""
    try:
        return token.decode("utf-8")
    except UnicodeDecodeError:
        return list(token)


def tokenize(llm: Any, body: dict[str, Any]) -> dict[str, Any]:
    content = body.get("content", "")
    if not isinstance(content, str):
        raise InvalidRequestError("content must be a string", param="content")
    add_special, with_pieces = _flag(body, "add_special", False), _flag(body, "with_pieces", False)
    llm.policy.refuse_surely_too_long(content, "content")  # genai's encode holds the GIL throughout
    ids: list[int] = llm.tokenizer.encode(content, add_special_tokens=add_special)
    llm.policy.check_prompt_tokens(len(ids), "content")
    if not with_pieces:
        return {"tokens": ids}
    table = llm.tokenizer.token_bytes.table if llm.tokenizer.token_bytes is not None else None
    if table is not None:
        return {"tokens": [{"id": i, "piece": _piece(table[i])} for i in ids]}
    return {"tokens": [{"id": i, "piece": llm.tokenizer.decode([i], skip_special_tokens=False)} for i in ids]}


def detokenize(llm: Any, body: dict[str, Any]) -> dict[str, Any]:
    check_detokenize_size(body, llm.policy.context_length or llm.policy.prompt_limit)
    tokens = body.get("tokens", [])
    if not isinstance(tokens, list) or not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in tokens):
        raise InvalidRequestError("tokens must be a list of token ids", param="tokens")
    if llm.tokenizer.token_bytes is not None:
        check_token_ids(tokens, len(llm.tokenizer.token_bytes.table))
    return {"content": llm.tokenizer.decode(tokens, skip_special_tokens=False)}


async def _codec(request: web.Request, work: Any) -> web.Response:
    core, ctx = request.app[CORE], request[CONTEXT]
    try:
        async with core.admission.slot(ctx.deadline):  # a flood is queued or refused, as /v3/tokenize
            body = await read_json_body(request)
            llm = _llm(await _servable(request, ctx, body.get("model")))
            async with core.admission.within(ctx.deadline):
                return _answer(await asyncio.to_thread(work, llm, body))
    except OvserveError as exc:
        return error_response(exc)


async def tokenize_route(request: web.Request) -> web.Response:
    return await _codec(request, tokenize)


async def detokenize_route(request: web.Request) -> web.Response:
    return await _codec(request, detokenize)


def add_routes(app: web.Application) -> None:
    # the key's, media type's, 404/405 and 413 refusals in llama-server's shape too
    guards.register_shape(app, _llama_body, "/health", "/props", "/tokenize", "/detokenize")
    app.router.add_get("/health", health)
    app.router.add_get("/props", props)
    app.router.add_post("/tokenize", tokenize_route)
    app.router.add_post("/detokenize", detokenize_route)

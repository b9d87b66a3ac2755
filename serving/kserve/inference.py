"""The KServe v2 semantics shared by REST and gRPC: metadata, readiness, and inference through
the servables' graphs (see the package docstring for the tensors and parameters)."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Literal

import msgspec
import numpy as np

from calculators.packets import Endpoint, HttpResponsePayload, ResponseBody, ResponsePayload, StreamChunks
from graphs.errors import InvalidRequestError, NotFoundError, OvserveError
from graphs.runner import GraphRun
from serving.frontend import FrontEndCore, RequestContext
from serving.kserve.codec import SHOWN_CHARS, SHOWN_DIMS, Tensor, array_tensor, bytes_tensor, shape_text, shown
from serving.servable import Servable, ServableManager, State

log = logging.getLogger("ovserve.kserve")

SERVER_NAME = "ovserve"
EXTENSIONS = ("binary_tensor_data", "parameters")
MODEL_VERSION = "1"  # a servable has one version
PLATFORM = "ovserve_graph"
TEXT_INPUT = "text_input"
TEXT_OUTPUT = "text_output"
EMBEDDINGS_OUTPUT = "embeddings"

# Request parameters that belong to the protocol or to tritonclient, not to the model: ignored
# (binary_data_output and triton_enable_empty_final_response are read by the front ends).
IGNORED_PARAMETERS = frozenset({"sequence_id", "sequence_start", "sequence_end", "priority", "timeout", "binary_data_output", "headers"})
IGNORED_PREFIX = "triton_"
SHOWN_NAMES = SHOWN_DIMS  # input names a message lists before it elides the rest

Parameter = bool | int | float | str
Kind = Literal["text_generation", "embeddings", "rerank", "image_generation", "speech_to_text", "text_to_speech", "other"]

# Graphs known by their calculator (OVMS's names). The media ones take HTTP_REQUEST_PAYLOAD like an
# LLM, so the calculator, not the input tag, tells them apart.
_KIND_BY_CALCULATOR: dict[str, Kind] = {
    "EmbeddingsCalculatorOV": "embeddings",
    "RerankCalculatorOV": "rerank",
    "ImageGenCalculator": "image_generation",
    "S2tCalculator": "speech_to_text",
    "T2sCalculator": "text_to_speech",
}

_json_decode = msgspec.json.Decoder().decode


@functools.cache  # asked on every ServerMetadata call; the installed version does not change
def server_version() -> str:
    try:
        return metadata.version("ovserve")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def server_metadata() -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": server_version(), "extensions": list(EXTENSIONS)}


def kind_of(servable: Servable) -> Kind:
    for node in servable.graph.nodes:
        if node.config.calculator in _KIND_BY_CALCULATOR:
            return _KIND_BY_CALCULATOR[node.config.calculator]
    if "HTTP_REQUEST_PAYLOAD" in servable.input_tags:
        return "text_generation"
    return "other"


def _tensor_meta(name: str, datatype: str, shape: list[int]) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape}


def model_metadata(servable: Servable) -> dict[str, Any]:
    kind = kind_of(servable)
    inputs, outputs = [], []
    if kind == "text_generation":
        inputs = [_tensor_meta(TEXT_INPUT, "BYTES", [1])]
        outputs = [_tensor_meta(TEXT_OUTPUT, "BYTES", [-1])]
    elif kind == "embeddings":
        inputs = [_tensor_meta(TEXT_INPUT, "BYTES", [-1])]
        outputs = [_tensor_meta(EMBEDDINGS_OUTPUT, "FP32", [-1, -1])]
    return {"name": servable.name, "versions": [MODEL_VERSION], "platform": PLATFORM, "inputs": inputs, "outputs": outputs}


def check_version(name: str, version: str) -> None:
    if version not in ("", MODEL_VERSION):
        raise NotFoundError(
            f"model {shown(name)} has no version {shown(version)}; it serves version {MODEL_VERSION}", code="model_not_found"
        )


def find_model(servables: ServableManager, name: str, version: str = "") -> Servable:
    """The servable (NotFoundError when unknown or no such version; UnavailableError while the
    server drains)."""
    if len(name) > SHOWN_CHARS and servables.find(name) is None:  # unknown: do not echo all of a long name
        raise NotFoundError(f"model {shown(name)} not found", param="model", code="model_not_found")
    servable = servables.get(name)
    check_version(name, version)
    return servable


def model_ready(servables: ServableManager, name: str, version: str = "") -> bool:
    """Can it take requests now? (lazy or idle-unloaded servables load on their first one)."""
    servable = servables.find(name)
    if servable is None:
        raise NotFoundError(f"model {shown(name)} not found", code="model_not_found")
    check_version(name, version)
    return not servables.draining and (servable.healthy or servable.state is State.IDLE)  # healthy: engine not restarting


@dataclass(frozen=True, slots=True)
class InferRequest:
    model_name: str
    model_version: str
    id: str
    inputs: tuple[Tensor, ...]
    outputs: tuple[str, ...] | None  # the outputs asked for; None: all
    parameters: Mapping[str, Parameter] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InferResult:
    model_name: str
    id: str
    outputs: list[Tensor]
    parameters: dict[str, Parameter]
    model_version: str = MODEL_VERSION


@dataclass(frozen=True, slots=True)
class TextPiece:
    """One streamed piece of generated text; the last one of a request has `finish_reason`."""

    text: str
    finish_reason: str | None = None


def _model_parameters(parameters: Mapping[str, Parameter]) -> dict[str, Parameter]:
    return {k: v for k, v in parameters.items() if k not in IGNORED_PARAMETERS and not k.startswith(IGNORED_PREFIX)}


def _text_input(request: InferRequest, single: bool) -> list[str]:
    names = [t.name for t in request.inputs]
    if names != [TEXT_INPUT]:
        got = ", ".join(shown(n) for n in names[:SHOWN_NAMES]) + (f", … ({len(names)} inputs)" if len(names) > SHOWN_NAMES else "")
        raise InvalidRequestError(f"expected exactly one input, {TEXT_INPUT!r} (BYTES); got [{got}]", param="inputs")
    tensor = request.inputs[0]
    if tensor.datatype != "BYTES":
        raise InvalidRequestError(f"input {TEXT_INPUT!r} must be BYTES, not {shown(tensor.datatype)}", param="inputs")
    if single and tensor.data.size != 1:
        raise InvalidRequestError(f"input {TEXT_INPUT!r} must hold exactly one element (the prompt); shape is {shape_text(tensor.shape)}")
    if tensor.data.size == 0:
        raise InvalidRequestError(f"input {TEXT_INPUT!r} is empty")
    try:
        return [item.decode("utf-8") for item in tensor.items()]
    except UnicodeDecodeError:
        raise InvalidRequestError(f"input {TEXT_INPUT!r} is not valid UTF-8") from None


def _check_outputs(request: InferRequest, available: tuple[str, ...]) -> None:
    for name in request.outputs or ():
        if name not in available:
            raise InvalidRequestError(
                f"model {shown(request.model_name)} has no output {shown(name)}; it has {list(available)}", param="outputs"
            )


def generation_body(text: str, parameters: Mapping[str, Parameter], model: str, stream: bool) -> tuple[Endpoint, dict[str, Any]]:
    """The OpenAI request for a `text_input`: a JSON object with `messages` (chat) or `prompt`
    (completion), else the text as one user message; request parameters are fields on top."""
    body: dict[str, Any] | None = None
    endpoint: Endpoint = "chat/completions"
    if text.lstrip().startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            if "messages" in parsed:
                body = parsed
            elif "prompt" in parsed:
                body, endpoint = parsed, "completions"
            else:
                raise InvalidRequestError(f"a JSON object in {TEXT_INPUT!r} needs 'messages' (chat) or 'prompt' (completion)")
    if body is None:
        body = {"messages": [{"role": "user", "content": text}]}
    body.update(_model_parameters(parameters))
    body["model"] = model
    body["stream"] = stream
    if stream and body.get("n", 1) != 1:
        raise InvalidRequestError("streaming returns one text; n must be 1", param="n")
    return endpoint, body


@asynccontextmanager
async def graph_run(
    core: FrontEndCore, ctx: RequestContext, servable: Servable, endpoint: Endpoint, body: dict[str, Any]
) -> AsyncIterator[GraphRun]:
    run = core.start(ctx, servable, endpoint, body)
    try:
        yield run
    finally:
        # shielded: a cancelled caller must not cut the nodes' close() short
        await asyncio.shield(servable.finish(run))


async def _whole_body(
    core: FrontEndCore, ctx: RequestContext, servable: Servable, endpoint: Endpoint, body: dict[str, Any]
) -> dict[str, Any]:
    async with graph_run(core, ctx, servable, endpoint, body) as run:
        async for out in run:
            result = _answer_object(out.packet.value)
            if not isinstance(result, dict):
                raise RuntimeError(f"graph of {servable.name!r} answered {type(result).__name__}, not a JSON object")
            if "error" in result:
                raise OvserveError(_error_message(result["error"]))
            return result
    raise RuntimeError(f"graph of {servable.name!r} produced no response")


def _answer_object(value: ResponsePayload) -> object:
    if isinstance(value, ResponseBody):
        return value.body
    if isinstance(value, HttpResponsePayload):  # a user's own response calculator
        return _json_decode(value.body)
    return value  # chunks of a streamed answer: not an answer object


async def _loaded(core: FrontEndCore, ctx: RequestContext, request: InferRequest) -> tuple[Servable, Kind]:
    found = core.servables.find(request.model_name)
    if found is not None:  # the metrics' model label (a LoRA name counts for its servable, as on /v3)
        ctx.model = found.name
    servable = find_model(core.servables, request.model_name, request.model_version)
    await servable.ensure_loaded()
    return servable, kind_of(servable)


def _unsupported(servable: Servable, kind: Kind) -> InvalidRequestError:
    what = "this graph" if kind == "other" else kind.replace("_", " ")
    return InvalidRequestError(f"model {servable.name!r}: KServe inference is not supported for {what}; use the /v3 REST API")


async def infer(core: FrontEndCore, ctx: RequestContext, request: InferRequest) -> InferResult:
    servable, kind = await _loaded(core, ctx, request)
    if kind == "text_generation":
        _check_outputs(request, (TEXT_OUTPUT,))
        (text,) = _text_input(request, single=True)
        # the name as given: "<servable>:<adapter>" selects a LoRA adapter on the servable's engine
        endpoint, body = generation_body(text, request.parameters, request.model_name, stream=False)
        answer = await _whole_body(core, ctx, servable, endpoint, body)
        choices = sorted(answer.get("choices", []), key=lambda c: c.get("index", 0))
        texts = [(c.get("message", {}).get("content") if endpoint == "chat/completions" else c.get("text")) or "" for c in choices]
        parameters: dict[str, Parameter] = {}
        if choices and choices[0].get("finish_reason"):
            parameters["finish_reason"] = choices[0]["finish_reason"]
        usage = answer.get("usage") or {}
        for key in ("prompt_tokens", "completion_tokens"):
            if isinstance(usage.get(key), int):
                parameters[key] = usage[key]
        output = bytes_tensor(TEXT_OUTPUT, [t.encode() for t in texts])
        return InferResult(request.model_name, request.id, [output], parameters)
    if kind == "embeddings":
        _check_outputs(request, (EMBEDDINGS_OUTPUT,))
        texts = _text_input(request, single=False)
        body = {**_model_parameters(request.parameters), "model": servable.name, "input": texts, "encoding_format": "float"}
        answer = await _whole_body(core, ctx, servable, "embeddings", body)
        rows = [d["embedding"] for d in sorted(answer["data"], key=lambda d: d["index"])]
        output = array_tensor(EMBEDDINGS_OUTPUT, "FP32", np.asarray(rows, dtype=np.float32))
        parameters = {}
        if isinstance((answer.get("usage") or {}).get("prompt_tokens"), int):
            parameters["prompt_tokens"] = answer["usage"]["prompt_tokens"]
        return InferResult(servable.name, request.id, [output], parameters)
    raise _unsupported(servable, kind)


def sse_events(body: bytes) -> list[dict[str, Any] | None]:
    """The events of SSE bytes from a user's own response calculator (`data: {...}\\n\\n` each); None
    stands for `data: [DONE]`."""
    events: list[dict[str, Any] | None] = []
    for block in body.split(b"\n\n"):
        for line in block.split(b"\n"):
            if not line.startswith(b"data:"):
                continue  # blank, comment or another SSE field
            data = line[5:].strip()
            if data == b"[DONE]":
                events.append(None)
                continue
            event = _json_decode(data)
            if isinstance(event, dict):
                events.append(event)
    return events


def _error_message(error: Any) -> str:
    return str(error.get("message", error)) if isinstance(error, dict) else str(error)


def _piece(event: dict[str, Any], chat: bool) -> TextPiece | None:
    """The text and finish reason of one chunk (None for chunks with neither: the role chunk,
    the usage chunk)."""
    if "error" in event:
        raise OvserveError(_error_message(event["error"]))
    choices = event.get("choices") or []
    return _choice_piece(choices[0], chat) if choices else None


def _choice_piece(choice: dict[str, Any], chat: bool) -> TextPiece | None:
    text = ((choice.get("delta") or {}).get("content") if chat else choice.get("text")) or ""
    finish = choice.get("finish_reason")
    return TextPiece(text, finish) if text or finish else None


def payload_pieces(payload: ResponsePayload, chat: bool) -> tuple[list[TextPiece | None], bool]:
    """The text pieces of one response value, and whether it ends the stream."""
    if isinstance(payload, StreamChunks):  # the stock response calculator's: nothing to parse
        return [_choice_piece(choice, chat) for choice in payload.choices], payload.done
    if isinstance(payload, ResponseBody):
        return [_piece(payload.body, chat)], True
    events = sse_events(payload.body) if payload.streaming else [_json_decode(payload.body)]
    done = None in events  # `data: [DONE]`: nothing after it counts
    return [_piece(event, chat) for event in (events[: events.index(None)] if done else events)], done  # type: ignore[arg-type]


async def infer_stream(core: FrontEndCore, ctx: RequestContext, request: InferRequest, emit: Callable[[str], None]) -> str | None:
    """Generate for one request, `emit`ting each non-empty piece of text as it comes (in the
    turn that produced it); returns the finish reason."""
    servable, kind = await _loaded(core, ctx, request)
    if kind != "text_generation":
        if kind == "embeddings":
            raise InvalidRequestError(f"model {servable.name!r} computes embeddings: use ModelInfer, there is nothing to stream")
        raise _unsupported(servable, kind)
    _check_outputs(request, (TEXT_OUTPUT,))
    (text,) = _text_input(request, single=True)
    endpoint, body = generation_body(text, request.parameters, request.model_name, stream=True)
    chat = endpoint == "chat/completions"
    finish: str | None = None
    async with graph_run(core, ctx, servable, endpoint, body) as run:
        async for out in run:
            pieces, done = payload_pieces(out.packet.value, chat)
            for piece in pieces:
                if piece is None:
                    continue
                finish = piece.finish_reason or finish
                if piece.text:
                    emit(piece.text)
            if done:
                return finish
    return finish

"""OpenAIRequestCalculator: HTTP body -> validated request, or a clear 400."""

from __future__ import annotations

import re
import time
import uuid

from pydantic import ValidationError

from calculators.openai.protocol import ChatCompletionRequest, CompletionRequest
from calculators.openai.reasoning_effort import apply_reasoning_effort
from calculators.openai.support import check_supported
from calculators.openai.tolerance import IGNORED_FIELDS, IgnoredFields, check_unknown, warn_once
from calculators.packets import GenerationRequest, HttpRequestPayload
from graphs import Calculator, Contract, InputSet, default_registry
from graphs.errors import InvalidRequestError

# pydantic adds the union member it tried to a location (`prompt.str`, `content.list[TextPart]`)
_TYPE_TAG = re.compile(r"^(str|int|float|bool|none|[a-z-]+\[.*\]|constrained-[a-z]+|[A-Z]\w*)$")


def _location(loc: tuple[int | str, ...]) -> str:
    parts = [str(part) for part in loc if isinstance(part, int) or not _TYPE_TAG.match(part)]
    # a tagged union adds its tag before the member's fields: `content.0.image_url.image_url.url`
    return ".".join(part for i, part in enumerate(parts) if i == 0 or part != parts[i - 1])


def describe_validation_error(error: ValidationError) -> InvalidRequestError:
    # The deepest problem: of a union's members, the one the value was meant for got furthest
    # (a list of content parts is not reported as "should be a valid string").
    first = max(error.errors(), key=lambda e: len(_location(e["loc"]).split(".")))
    location = _location(first["loc"])
    kind = first["type"]
    if kind == "extra_forbidden":
        message = f"unsupported field: {location}"
    elif kind == "missing":
        message = f"missing required field: {location}"
    else:
        message = f"invalid value for {location}: {first['msg']}"
    more = len(error.errors()) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return InvalidRequestError(message, param=location or None)


@default_registry.calculator()
class OpenAIRequestCalculator(Calculator):
    """Validates an OpenAI chat or completions body. Unknown top-level fields are ignored
    (logged once per name, told in the response header) unless they ask for what the engine
    cannot do (calculators.openai.tolerance). With the optional `LLM` side packet,
    `reasoning_effort` is mapped onto the servable's chat template; without it, it is ignored.

    Example node:
        node { calculator: "OpenAIRequestCalculator" input_stream: "HTTP_REQUEST_PAYLOAD:input"
               input_side_packet: "LLM:llm" output_stream: "REQUEST:request" }
    """

    contract = Contract.of(inputs=("HTTP_REQUEST_PAYLOAD",), outputs=("REQUEST",), side_packets=("LLM",), optional=("LLM",))

    async def process(self, inputs: InputSet) -> None:
        payload: HttpRequestPayload = inputs["HTTP_REQUEST_PAYLOAD"].value
        if payload.endpoint not in ("chat/completions", "completions"):
            raise InvalidRequestError(f"this model generates text; it does not serve {payload.endpoint}", param="model")
        schema = ChatCompletionRequest if payload.endpoint == "chat/completions" else CompletionRequest
        try:
            params = schema.model_validate(payload.body)
        except ValidationError as exc:
            raise describe_validation_error(exc) from None
        ignored = check_unknown(payload.endpoint, params.model_extra or {})
        check_supported(params)
        if isinstance(params, ChatCompletionRequest):
            llm = self.ctx.side_packets.get("LLM")
            params, took_effect = apply_reasoning_effort(params, getattr(getattr(llm, "tokenizer", None), "chat_template", None))
            if not took_effect:
                ignored.append("reasoning_effort")
        if ignored:
            warn_once(payload.endpoint, ignored)
            notes: IgnoredFields | None = self.ctx.request.get(IGNORED_FIELDS)
            if notes is not None:
                notes.add(ignored)
        prefix = "chatcmpl-" if payload.endpoint == "chat/completions" else "cmpl-"
        request = GenerationRequest(payload.endpoint, params, prefix + uuid.uuid4().hex, int(time.time()))
        self.ctx.emit("REQUEST", request, inputs.timestamp)

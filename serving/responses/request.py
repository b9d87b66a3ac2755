"""A Responses request, validated, and turned into the body of a chat request.

Input items map onto chat messages: a message (string or `input_text` / `output_text` /
`input_image` parts) keeps its role; `function_call` items become an assistant turn's
`tool_calls`, `function_call_output` items `tool` messages; `reasoning` items are accepted and
dropped (the chat template leaves past reasoning out of the prompt anyway).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from calculators.openai.request_calculator import describe_validation_error
from graphs.errors import InvalidRequestError


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Open(BaseModel):
    """Items clients send back as the server gave them: keys we do not read are allowed."""

    model_config = ConfigDict(extra="allow", frozen=True)


class InputText(_Open):
    type: Literal["input_text", "output_text", "text"]
    text: str


class Refusal(_Open):
    type: Literal["refusal"]
    refusal: str


class InputImage(_Open):
    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["auto", "low", "high", "original"] | None = None


Part = Annotated[InputText | Refusal | InputImage, Field(discriminator="type")]


class MessageItem(_Open):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[Part]


class FunctionCallItem(_Open):
    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str


class FunctionCallOutputItem(_Open):
    type: Literal["function_call_output"]
    call_id: str
    output: str | list[Part]


class ReasoningItem(_Open):
    type: Literal["reasoning"]


class FunctionTool(_Model):
    type: Literal["function"]
    name: Annotated[str, Field(min_length=1, max_length=64)]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class NamedFunction(_Model):
    type: Literal["function"]
    name: str


class TextFormat(_Model):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextConfig(_Model):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None  # accepted; no effect here


class ReasoningConfig(_Model):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None  # the older name of summary


def _item_type(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("type", "message"))  # an easy input message has no type
    return "message"


class ResponsesRequest(_Model):
    model: str
    input: str | list[MessageItem | FunctionCallItem | FunctionCallOutputItem | ReasoningItem]
    instructions: str | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedFunction | None = None
    parallel_tool_calls: StrictBool | None = None
    max_output_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    text: TextConfig | None = None
    reasoning: ReasoningConfig | None = None
    stream: StrictBool = False
    store: StrictBool = True
    previous_response_id: str | None = None
    metadata: dict[str, str] | None = None
    # Accepted without effect: what to include, caching hints, end-user ids, truncation.
    include: list[str] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    service_tier: str | None = None
    background: Literal[False] | None = None  # no background mode: true is refused


def parse(body: dict[str, Any]) -> ResponsesRequest:
    """The validated request (a 400 naming the first problem)."""
    items = body.get("input")
    if isinstance(items, list):
        for i, item in enumerate(items):
            kind = _item_type(item)
            if kind not in ("message", "function_call", "function_call_output", "reasoning"):
                raise InvalidRequestError(f"input item type {kind[:64]!r} is not supported here", param=f"input.{i}.type")
    try:
        return ResponsesRequest.model_validate(body)
    except ValidationError as exc:
        raise describe_validation_error(exc) from None


def _part(part: InputText | Refusal | InputImage, where: str) -> dict[str, Any]:
    if isinstance(part, InputText):
        return {"type": "text", "text": part.text}
    if isinstance(part, Refusal):
        return {"type": "text", "text": part.refusal}
    if part.image_url is None:
        raise InvalidRequestError("input_image needs image_url (a URL or data URL); file_id is not supported", param=f"{where}.image_url")
    url: dict[str, Any] = {"url": part.image_url}
    if part.detail in ("auto", "low", "high"):
        url["detail"] = part.detail
    return {"type": "image_url", "image_url": url}


def _content(content: str | list[Any], where: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    parts = [_part(p, f"{where}.{i}") for i, p in enumerate(content)]
    if all(p["type"] == "text" for p in parts):  # plain text: what every chat template reads
        return "".join(p["text"] for p in parts)
    return parts


def messages(request: ResponsesRequest) -> list[dict[str, Any]]:
    """The request's input as chat messages (without `instructions`)."""
    if isinstance(request.input, str):
        return [{"role": "user", "content": request.input}]
    out: list[dict[str, Any]] = []
    for i, item in enumerate(request.input):
        where = f"input.{i}"
        if isinstance(item, MessageItem):
            out.append({"role": item.role, "content": _content(item.content, f"{where}.content")})
        elif isinstance(item, FunctionCallItem):
            call = {"id": item.call_id, "type": "function", "function": {"name": item.name, "arguments": item.arguments}}
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant" and not isinstance(last.get("content"), list):
                last.setdefault("tool_calls", []).append(call)  # one assistant turn: its text and its calls
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif isinstance(item, FunctionCallOutputItem):
            output = _content(item.output, f"{where}.output")
            out.append({"role": "tool", "tool_call_id": item.call_id, "content": output})
    return out


def _chat_tool(tool: FunctionTool) -> dict[str, Any]:
    """A function tool in the chat shape. `strict: false` (what agents send) is the default and
    left out: the chat template renders every key it gets into the prompt."""
    function = tool.model_dump(exclude={"type"}, exclude_none=True)
    if not tool.strict:
        function.pop("strict", None)
    return {"type": "function", "function": function}


def chat_body(request: ResponsesRequest, history: list[dict[str, Any]], model: str) -> dict[str, Any]:
    """The chat request for `request` continuing `history` (earlier turns, as chat messages)."""
    head = [{"role": "system", "content": request.instructions}] if request.instructions else []
    body: dict[str, Any] = {"model": model, "messages": head + history + messages(request), "stream": request.stream}
    if request.stream:
        body["stream_options"] = {"include_usage": True}  # response.completed carries usage
    optional = {
        "max_completion_tokens": request.max_output_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "parallel_tool_calls": request.parallel_tool_calls,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if request.tools:
        body["tools"] = [_chat_tool(t) for t in request.tools]
    choice = request.tool_choice
    if isinstance(choice, NamedFunction):
        body["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    elif choice is not None:
        body["tool_choice"] = choice
    fmt = request.text.format if request.text is not None else None
    if fmt is not None and fmt.type == "json_schema":
        if fmt.name is None or fmt.schema_ is None:
            raise InvalidRequestError("text.format of type json_schema needs name and schema", param="text.format")
        schema = {"name": fmt.name, "schema": fmt.schema_, "strict": fmt.strict, "description": fmt.description}
        body["response_format"] = {"type": "json_schema", "json_schema": {k: v for k, v in schema.items() if v is not None}}
    elif fmt is not None and fmt.type == "json_object":
        body["response_format"] = {"type": "json_object"}
    effort = request.reasoning.effort if request.reasoning is not None else None
    if effort is not None:
        body["reasoning_effort"] = "high" if effort == "xhigh" else effort
    return body

"""Anthropic's Messages API request (`POST /v1/messages`, `/v1/messages/count_tokens`) and its
translation into the chat graph's input: an OpenAI chat body, so the same graph, template, tool
parser and limits serve both. Validation is pydantic's; the translation is `chat_body`.

What has no effect here is accepted and dropped (`metadata`, `cache_control`, `service_tier`, a
thinking block's `signature`); what the server cannot do is a 400 naming it (server tools, a
final assistant turn to continue, file sources)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from calculators.openai.request_calculator import describe_validation_error
from graphs.errors import InvalidRequestError


class _Model(BaseModel):
    # Nested blocks carry keys we do not act on (cache_control, citations, caller): allowed, dropped.
    model_config = ConfigDict(extra="allow", frozen=True)


class TextBlock(_Model):
    type: Literal["text"]
    text: str


class Base64Source(_Model):
    type: Literal["base64"]
    media_type: str
    data: str


class UrlSource(_Model):
    type: Literal["url"]
    url: str


class ImageBlock(_Model):
    type: Literal["image"]
    source: Annotated[Base64Source | UrlSource, Field(discriminator="type")]

    def url(self) -> str:
        source = self.source
        return source.url if isinstance(source, UrlSource) else f"data:{source.media_type};base64,{source.data}"


class ToolUseBlock(_Model):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


class ToolResultBlock(_Model):
    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[Annotated[TextBlock | ImageBlock, Field(discriminator="type")]] = ""
    is_error: bool = False

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        if any(isinstance(block, ImageBlock) for block in self.content):
            raise InvalidRequestError("images in a tool_result are not supported", param="messages")
        return "".join(block.text for block in self.content if isinstance(block, TextBlock))


class ThinkingBlock(_Model):
    type: Literal["thinking"]
    thinking: str


class RedactedThinkingBlock(_Model):
    type: Literal["redacted_thinking"]


Block = Annotated[
    TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock | RedactedThinkingBlock, Field(discriminator="type")
]


class Message(_Model):
    role: Literal["user", "assistant"]
    content: str | list[Block]


class Tool(_Model):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
    description: str | None = None
    input_schema: dict[str, Any]
    type: Literal["custom"] | None = None  # server tools (web_search_…, bash_…) have other types: a 400


class ToolChoice(_Model):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool = False


class Thinking(_Model):
    type: Literal["enabled", "disabled", "adaptive"]


class JsonFormat(_Model):
    type: Literal["json_schema"]
    schema_: Annotated[dict[str, Any], Field(alias="schema")]


class OutputConfig(_Model):
    format: JsonFormat | None = None


class CountTokensRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    messages: Annotated[list[Message], Field(min_length=1)]
    system: str | list[TextBlock] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    output_config: OutputConfig | None = None
    # accepted, no effect here
    cache_control: Any = None
    speed: Any = None


class MessagesRequest(CountTokensRequest):
    max_tokens: Annotated[int, Field(ge=1)]  # required, as Anthropic has it
    stop_sequences: Annotated[list[Annotated[str, Field(min_length=1)]], Field(max_length=16)] | None = None
    stream: bool = False
    temperature: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    top_k: Annotated[int, Field(ge=0)] | None = None
    # accepted, no effect here
    metadata: Any = None
    service_tier: Any = None
    inference_geo: Any = None


def parse(body: dict[str, Any], schema: type[CountTokensRequest]) -> Any:
    """The request validated (a 400 naming the field otherwise)."""
    try:
        return schema.model_validate(body)
    except ValidationError as exc:
        raise describe_validation_error(exc) from None


def chat_body(request: CountTokensRequest) -> dict[str, Any]:
    """The OpenAI chat body asking the chat graph for what `request` asks."""
    messages: list[dict[str, Any]] = []
    if request.system:
        system = request.system if isinstance(request.system, str) else "\n".join(block.text for block in request.system)
        messages.append({"role": "system", "content": system})
    for message in request.messages:
        messages += _chat_messages(message)
    if request.messages[-1].role == "assistant":
        raise InvalidRequestError("a final assistant turn to continue (prefill) is not supported; end with a user turn", param="messages")
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    if request.tools:
        body["tools"] = [_tool(tool) for tool in request.tools]
    choice = request.tool_choice
    if choice is not None:
        body["tool_choice"] = _tool_choice(choice)
        if choice.disable_parallel_tool_use:
            body["parallel_tool_calls"] = False
    if request.thinking is not None:  # onto the template's switch (Qwen3's enable_thinking)
        body["chat_template_kwargs"] = {"enable_thinking": request.thinking.type != "disabled"}
    if request.output_config is not None and request.output_config.format is not None:
        schema = request.output_config.format.schema_
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    if isinstance(request, MessagesRequest):
        body["max_tokens"] = request.max_tokens
        for name in ("temperature", "top_p", "top_k"):
            if (value := getattr(request, name)) is not None:
                body[name] = value
        if request.stop_sequences:
            # The stop string stays in the text so that the encoder can name it (stop_sequence), then cuts it.
            body["stop"] = request.stop_sequences
            body["include_stop_str_in_output"] = True
        if request.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
    return body


def _tool(tool: Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        function["description"] = tool.description
    function["parameters"] = tool.input_schema
    return {"type": "function", "function": function}


def _tool_choice(choice: ToolChoice) -> object:
    if choice.type == "tool":
        if not choice.name:
            raise InvalidRequestError("tool_choice of type 'tool' needs a 'name'", param="tool_choice")
        return {"type": "function", "function": {"name": choice.name}}
    return {"auto": "auto", "any": "required", "none": "none"}[choice.type]


def _chat_messages(message: Message) -> list[dict[str, Any]]:
    """One Anthropic turn as OpenAI messages: tool results become `tool` messages (before the rest
    of the user's turn), tool uses an assistant's `tool_calls`; thinking is dropped, as the chat
    route drops reasoning from history."""
    if isinstance(message.content, str):
        return [{"role": message.role, "content": message.content}]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for block in message.content:
        if isinstance(block, TextBlock):
            parts.append({"type": "text", "text": block.text})
        elif isinstance(block, ImageBlock):
            if message.role != "user":
                raise InvalidRequestError("image blocks are taken in user turns only", param="messages")
            parts.append({"type": "image_url", "image_url": {"url": block.url()}})
        elif isinstance(block, ToolUseBlock):
            if message.role != "assistant":
                raise InvalidRequestError("tool_use blocks belong in assistant turns", param="messages")
            calls.append({"id": block.id, "type": "function", "function": {"name": block.name, "arguments": block.input}})
        elif isinstance(block, ToolResultBlock):
            if message.role != "user":
                raise InvalidRequestError("tool_result blocks belong in user turns", param="messages")
            out.append({"role": "tool", "tool_call_id": block.tool_use_id, "content": block.text()})
    if message.role == "assistant":
        text = "".join(part["text"] for part in parts)
        turn: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            turn["tool_calls"] = calls
        if text or calls:
            out.append(turn)
    elif parts:
        out.append({"role": "user", "content": parts})
    return out

"""OpenAI request bodies as pydantic models: the edge where untrusted JSON becomes data.

Unknown fields inside nested objects are refused. Unknown top-level fields are kept aside
(`model_extra`) for calculators.openai.tolerance: ignored and named in a response header, or a
400 when they ask for what the engine cannot do. Fields we parse but cannot honour in some
combination are refused with a clear message by `calculators.openai.support.check_supported`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, field_validator

MAX_STOP_STRINGS = 16
# Speculative decoding: tokens proposed per step, and the n-gram prompt lookup matches (bounded:
# every proposed token is a position the engine verifies in the next step).
MAX_ASSISTANT_TOKENS = 64
MAX_NGRAM_SIZE = 64
# Integers that travel to the engine worker (msgpack) and into GenerationConfig (C++ ints) must
# fit there: larger ones were 500s (OverflowError) before they were bounded here.
INT32_MAX = 2**31 - 1
# Names the chat template gets from us; a chat_template_kwargs key of the same name would clash.
TEMPLATE_RESERVED = frozenset({"messages", "add_generation_prompt", "tools", "bos_token", "eos_token"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Open(BaseModel):
    """Nested objects whose extra keys clients send freely (e.g. `image_url.detail`)."""

    model_config = ConfigDict(extra="allow", frozen=True)


class TextPart(_Model):
    type: Literal["text"]
    text: str


class ImageUrl(_Open):
    url: str
    # OpenAI's resolution hint: accepted and ignored (the model's own image processor decides the
    # resolution); any other value is a 400.
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Model):
    type: Literal["image_url"]
    image_url: ImageUrl | str  # {"url", "detail"}, or the URL alone as some clients send it

    @property
    def url(self) -> str:
        return self.image_url if isinstance(self.image_url, str) else self.image_url.url


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class FunctionCall(_Model):
    name: str
    arguments: str | dict[str, Any]  # OpenAI sends a JSON string; some clients send the object


class ToolCall(_Model):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(_Model):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None  # assistant turns that called tools
    tool_call_id: str | None = None  # tool turns: which call this answers
    reasoning_content: str | None = None  # accepted in history (dropped from the prompt)
    # What the openai SDK's ChatCompletionMessage carries when an agent loop sends a reply back
    # as it came: accepted in history and dropped from the prompt (audio and function_call only
    # when null: a value would ask for what this server does not do).
    refusal: str | None = None
    annotations: list[Any] | None = None
    audio: None = None
    function_call: None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if isinstance(part, TextPart))

    def has_images(self) -> bool:
        return isinstance(self.content, list) and any(isinstance(part, ImagePart) for part in self.content)


class FunctionDefinition(_Model):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Model):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(_Model):
    name: str


class NamedToolChoice(_Model):
    type: Literal["function"]
    function: NamedFunction


class JsonSchemaFormat(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str
    description: str | None = None
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Model):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class StreamOptions(_Model):
    include_usage: StrictBool = False
    continuous_usage_stats: StrictBool = False  # vLLM's; accepted, usage stays on the last chunk


Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Penalty = Annotated[float, Field(ge=-2.0, le=2.0)]
TokenId = Annotated[int, Field(ge=0)]
EngineTokenId = Annotated[int, Field(ge=0, le=INT32_MAX)]


def _template_kwargs(value: dict[str, Any] | None) -> dict[str, Any] | None:
    clash = sorted(TEMPLATE_RESERVED.intersection(value or {}))
    if clash:
        raise ValueError(f"{', '.join(clash)} cannot be set through chat_template_kwargs")
    return value


TemplateKwargs = Annotated[dict[str, Any] | None, AfterValidator(_template_kwargs)]


class SamplingParams(_Model):
    """Fields shared by chat and completions (OpenAI's plus the usual vLLM/OVMS extras)."""

    model_config = ConfigDict(extra="allow", frozen=True)  # unknown ones: calculators.openai.tolerance

    model: str
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    stop: str | Annotated[list[str], Field(max_length=MAX_STOP_STRINGS)] | None = None
    seed: int | None = None
    n: Annotated[int, Field(ge=1, le=128)] = 1
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    logit_bias: dict[str, float] | None = None  # refused unless empty: the engine has no logit bias
    response_format: ResponseFormat | None = None
    # extras, as in OVMS and vLLM
    best_of: Annotated[int, Field(ge=1, le=128)] | None = None  # > 1: beam search with that many beams
    num_beams: Annotated[int, Field(ge=1, le=128)] | None = None  # alias of best_of
    length_penalty: float | None = None
    top_k: Annotated[int, Field(ge=-1, le=INT32_MAX)] | None = None
    min_p: Probability | None = None
    repetition_penalty: Annotated[float, Field(gt=0.0)] | None = None
    min_tokens: Annotated[int, Field(ge=0, le=INT32_MAX)] | None = None
    stop_token_ids: Annotated[list[EngineTokenId], Field(max_length=64)] | None = None
    ignore_eos: StrictBool = False
    include_stop_str_in_output: StrictBool = False
    skip_special_tokens: StrictBool = True
    # speculative decoding (a servable with a draft model or prompt lookup), as OVMS: tokens proposed
    # per step, or (draft model only) the draft's confidence below which it stops proposing
    num_assistant_tokens: Annotated[int, Field(ge=1, le=MAX_ASSISTANT_TOKENS)] | None = None
    assistant_confidence_threshold: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    max_ngram_size: Annotated[int, Field(ge=1, le=MAX_NGRAM_SIZE)] | None = None  # prompt lookup only

    @field_validator("stop")
    @classmethod
    def _stop_not_empty(cls, value: str | list[str] | None) -> str | list[str] | None:
        items = [value] if isinstance(value, str) else value or []
        if any(not s for s in items):
            raise ValueError("stop strings must not be empty")
        return value

    def stop_strings(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def beams(self) -> int:
        """Beam width: best_of (or num_beams) above 1 means beam search."""
        return max(self.best_of or 1, self.num_beams or 1)


class ChatCompletionRequest(SamplingParams):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    logprobs: StrictBool = False
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: StrictBool | None = None
    chat_template_kwargs: TemplateKwargs = None
    add_generation_prompt: StrictBool = True
    # mapped onto the template's switches where it has them (calculators.openai.reasoning_effort)
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = None

    def token_limit(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    @property
    def wants_logprobs(self) -> bool:
        return self.logprobs


class CompletionRequest(SamplingParams):
    # A text, or token ids; one prompt per request (a list of several is refused clearly).
    prompt: str | list[str] | Annotated[list[TokenId], Field(min_length=1)] | list[Annotated[list[TokenId], Field(min_length=1)]]
    # 0 with echo and logprobs scores the prompt without generating (support.py checks the rest)
    max_tokens: Annotated[int, Field(ge=0)] | None = None
    logprobs: Annotated[int, Field(ge=0, le=5)] | None = None
    echo: StrictBool = False
    suffix: str | None = None  # refused unless empty: no fill-in-the-middle here

    def token_limit(self) -> int | None:
        return self.max_tokens

    def prompt_text(self) -> str | None:
        """The prompt when it is text (None when it came as token ids)."""
        if isinstance(self.prompt, str):
            return self.prompt
        first = self.prompt[0]
        return first if isinstance(first, str) else None

    def prompt_token_ids(self) -> list[int] | None:
        """The prompt when it came as token ids."""
        first = self.prompt[0] if isinstance(self.prompt, list) and self.prompt else None
        if isinstance(first, int):
            return list(self.prompt)  # type: ignore[arg-type]
        if isinstance(first, list):
            return list(first)
        return None

    @property
    def wants_logprobs(self) -> bool:
        return self.logprobs is not None

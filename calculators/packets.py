"""The values that flow between the stock text-generation calculators (frozen data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from calculators.openai.protocol import ChatCompletionRequest, CompletionRequest

if TYPE_CHECKING:
    import numpy

Endpoint = Literal[
    "chat/completions",
    "completions",
    "embeddings",
    "rerank",
    "audio/transcriptions",
    "audio/translations",
    "audio/speech",
    "images/generations",
    "images/edits",
]


@dataclass(frozen=True, slots=True)
class HttpRequestPayload:
    """Graph input `HTTP_REQUEST_PAYLOAD`: the parsed JSON body the front end received."""

    endpoint: Endpoint
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ResponseBody:
    """Graph output (`HTTP_RESPONSE_PAYLOAD`, `RESPONSE_PAYLOAD`) of the stock calculators: a whole
    answer as a JSON object, which each front end encodes in its own format."""

    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StreamChunks:
    """Graph output `HTTP_RESPONSE_PAYLOAD` of a streamed answer, one per step: OpenAI chunk
    objects that each front end encodes (SSE events for /v3, text pieces for KServe)."""

    # The fields around `choices` in every chunk (id, object, created, model, …): the same
    # object for all of a request's steps, so an encoder may encode it once per request.
    envelope: dict[str, Any]
    choices: tuple[dict[str, Any], ...]  # one chunk per choice object, in order
    usage: dict[str, Any] | None = None  # the final usage chunk's (`choices: []`), when asked for
    done: bool = False  # the answer is complete (SSE: `data: [DONE]` follows)


@dataclass(frozen=True, slots=True)
class HttpResponsePayload:
    """Graph output `HTTP_RESPONSE_PAYLOAD` as raw bytes, for a user's own response calculator:
    a whole JSON body, or SSE events (`data: …\n\n`, ending with `data: [DONE]`) when streaming."""

    body: bytes
    streaming: bool


ResponsePayload = ResponseBody | StreamChunks | HttpResponsePayload  # what front ends accept


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """A validated request (output of OpenAIRequestCalculator)."""

    endpoint: Endpoint
    params: ChatCompletionRequest | CompletionRequest
    id: str
    created: int

    @property
    def stream(self) -> bool:
        return self.params.stream


@dataclass(frozen=True, slots=True)
class Prompt:
    """Tokenized prompt plus the generation settings for the engine (TokenizerCalculator)."""

    request: GenerationRequest
    token_ids: list[int]  # the prompt's text tokens (a vision model's engine takes `text`; these count it)
    max_new_tokens: int
    engine_config: dict[str, Any]  # GenerationConfig fields
    # Vision-language servables: the rendered prompt as text (with the model's image tags) and
    # its images, RGB uint8 arrays of shape (height, width, 3), in the order the tags name them.
    text: str | None = None
    images: tuple[numpy.ndarray, ...] = ()
    # Prompt tokens the images add beyond their tags in `token_ids`, where known ahead (0: not
    # known); the engine's own count replaces the sum when the request ends.
    image_tokens: int = 0


@dataclass(frozen=True, slots=True)
class TokenDelta:
    index: int  # choice index
    token_ids: list[int]
    finish_reason: str | None  # "stop" / "length" once this sequence has ended
    logprobs: list[float] | None = None  # per token, when the request asked for them
    # echo with logprobs: the prompt's tokens and their log-probabilities, before the rest
    prompt_token_ids: list[int] | None = None
    prompt_logprobs: list[float] | None = None


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    token: str
    logprob: float | None  # None for a prompt's first token (nothing comes before it)
    raw: bytes  # the token's bytes (OpenAI's `bytes`)


@dataclass(frozen=True, slots=True)
class Generation:
    """New tokens of one engine step (ContinuousBatchingLLMCalculator)."""

    deltas: tuple[TokenDelta, ...]
    prompt_tokens: int


@dataclass(frozen=True, slots=True)
class TextDelta:
    index: int
    text: str
    token_count: int  # tokens behind this delta (usage counting)
    finish_reason: str | None
    logprobs: tuple[TokenLogprob, ...] | None = None  # the tokens behind this delta
    prompt_logprobs: tuple[TokenLogprob, ...] | None = None  # echo with logprobs: the prompt's


@dataclass(frozen=True, slots=True)
class TextChunk:
    """New text of one step (DetokenizerCalculator)."""

    deltas: tuple[TextDelta, ...]
    prompt_tokens: int

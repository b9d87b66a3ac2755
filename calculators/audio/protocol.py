"""`POST /v3/audio/transcriptions` and `/v3/audio/translations` (OpenAI's multipart forms).

The front end turns the form into the `HttpRequestPayload` body: each text field a string, a
repeated field (or one whose name ends in `[]`, as the OpenAI SDK sends lists) a list of strings,
and the `file` part an `AudioUpload`, which also carries the server's duration limit (a client
cannot forge one: its fields arrive as strings). Fields OpenAI defines that the engine cannot
use are accepted and ignored (`chunking_strategy`, `include[]`, `known_speaker_*`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from graphs.errors import InvalidRequestError

TRANSCRIPTIONS: Final = "audio/transcriptions"
TRANSLATIONS: Final = "audio/translations"
ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]
STREAMED_FORMATS = ("json", "text")  # OpenAI streams only these: text deltas, then the whole text


@dataclass(frozen=True, slots=True)
class AudioUpload:
    """The `file` part: its bytes as uploaded, and how long the server lets audio be."""

    data: bytes
    filename: str = ""
    content_type: str = ""
    max_seconds: float = 600.0


class _Form(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, arbitrary_types_allowed=True, populate_by_name=True)

    model: Annotated[str, Field(min_length=1)]
    file: AudioUpload
    prompt: str | None = None
    temperature: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    response_format: ResponseFormat = "json"
    stream: bool = False

    @field_validator("file", mode="before")
    @classmethod
    def _is_upload(cls, value: Any) -> Any:
        if not isinstance(value, AudioUpload):
            raise ValueError("send the audio as a file part of a multipart/form-data body")
        return value


class TranscriptionForm(_Form):
    language: Annotated[str, Field(pattern=r"^[A-Za-z]{2,3}$")] | None = None
    timestamp_granularities: list[Literal["segment", "word"]] = Field(default_factory=list, alias="timestamp_granularities[]")


class TranslationForm(_Form):
    pass


@dataclass(frozen=True, slots=True)
class SpeechRequest:
    """A validated request, whichever the endpoint."""

    model: str
    upload: AudioUpload
    task: Literal["transcribe", "translate"]
    response_format: ResponseFormat
    temperature: float
    stream: bool
    language: str | None = None
    prompt: str | None = None
    segments: bool = False  # verbose_json's segment timestamps
    words: bool = False  # verbose_json's word timestamps


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _describe(error: ValidationError) -> InvalidRequestError:
    first = error.errors()[0]
    where = _location(first["loc"])
    if first["type"] == "missing":
        return InvalidRequestError(f"missing required field: {where}", param=where)
    return InvalidRequestError(f"invalid value for {where}: {first['msg']}", param=where)


def parse_request(endpoint: str, body: dict[str, Any]) -> SpeechRequest:
    """The form as a `SpeechRequest` (400s naming the field)."""
    form_type = TranscriptionForm if endpoint == TRANSCRIPTIONS else TranslationForm
    if endpoint not in (TRANSCRIPTIONS, TRANSLATIONS):
        raise InvalidRequestError(f"this servable transcribes and translates speech, not {endpoint}", param="model")
    if isinstance(body.get("timestamp_granularities[]"), str):
        body = {**body, "timestamp_granularities[]": [body["timestamp_granularities[]"]]}
    try:
        form = form_type.model_validate(body)
    except ValidationError as exc:
        raise _describe(exc) from None
    if form.stream and form.response_format not in STREAMED_FORMATS:
        raise InvalidRequestError(
            f"response_format {form.response_format!r} cannot be streamed; stream json or text", param="response_format"
        )
    granularities: list[str] = list(getattr(form, "timestamp_granularities", []))
    if granularities and form.response_format != "verbose_json":
        raise InvalidRequestError("timestamp_granularities[] needs response_format verbose_json", param="timestamp_granularities[]")
    verbose = form.response_format == "verbose_json"
    return SpeechRequest(
        model=form.model,
        upload=form.file,
        task="transcribe" if endpoint == TRANSCRIPTIONS else "translate",
        response_format=form.response_format,
        temperature=form.temperature,
        stream=form.stream,
        language=(getattr(form, "language", None) or "").lower() or None,
        prompt=form.prompt or None,
        # OpenAI: verbose_json gives segments unless only words were asked for
        segments=verbose and (not granularities or "segment" in granularities),
        words="word" in granularities,
    )

"""Image requests: `POST /v3/images/generations` (a JSON body) and `/v3/images/edits` (multipart
form fields, so every value arrives as text) parsed into one `ImageJob` for the engine.

The fields are OpenAI's (prompt, n, size, response_format) plus the genai ones OVMS accepts
(prompt_2/3, negative_prompt(_2/_3), width, height, num_images_per_prompt, num_inference_steps,
rng_seed, guidance_scale, strength, max_sequence_length); `seed` is taken for `rng_seed`. Limits
come from the node's options (OVMS's max_resolution, max_num_images_per_prompt,
max_num_inference_steps); each broken rule is a 400 naming its field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from calculators.image.options import ImageGenOptions, parse_resolution
from calculators.openai.request_calculator import describe_validation_error
from graphs.errors import InvalidRequestError

Kind = Literal["generations", "edits"]
MAX_PROMPT_CHARS = 16384  # far beyond any text encoder's window; bounds the tokenizer's work
MAX_SEED = 2**64 - 1

# OpenAI fields that change the picture in ways this engine cannot: a value other than the one
# it always gives is refused (None: any value is refused).
_FIXED = {"quality": ("auto", "standard"), "style": None, "background": ("auto", "opaque"), "moderation": ("auto", "low")}
_TEXT_FIELDS = ("prompt_2", "prompt_3", "negative_prompt", "negative_prompt_2", "negative_prompt_3")


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file part of a multipart request (the front end reads it under the body limit)."""

    filename: str
    content_type: str
    data: bytes


Text = Annotated[str, Field(max_length=MAX_PROMPT_CHARS)]


class ImageRequest(BaseModel):
    """The fields of both routes. Lax types: multipart values are text ("2" is n=2)."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    model: str
    prompt: Annotated[str, Field(min_length=1, max_length=MAX_PROMPT_CHARS)]
    prompt_2: Text | None = None
    prompt_3: Text | None = None
    negative_prompt: Text | None = None
    negative_prompt_2: Text | None = None
    negative_prompt_3: Text | None = None
    n: Annotated[int, Field(ge=1)] | None = None
    num_images_per_prompt: Annotated[int, Field(ge=1)] | None = None
    size: str | None = None
    width: Annotated[int, Field(ge=1)] | None = None
    height: Annotated[int, Field(ge=1)] | None = None
    response_format: Literal["b64_json", "url"] | None = None
    output_format: Literal["png"] | None = None
    output_compression: Annotated[int, Field(ge=0, le=100)] | None = None  # PNG: lossless, nothing to compress
    num_inference_steps: Annotated[int, Field(ge=1)] | None = None
    rng_seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = None
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = None
    guidance_scale: Annotated[float, Field(ge=0.0, le=100.0, allow_inf_nan=False)] | None = None
    strength: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] | None = None
    max_sequence_length: Annotated[int, Field(ge=1, le=4096)] | None = None
    user: str | None = None
    quality: str | None = None
    style: str | None = None
    background: str | None = None
    moderation: str | None = None
    input_fidelity: str | None = None
    image: Any = None  # edits: an UploadedFile
    mask: Any = None


@dataclass(frozen=True, slots=True)
class ImageJob:
    """One validated request: what the engine is called with."""

    kind: Kind
    model: str
    prompt: str
    config: dict[str, Any]  # genai generate() keyword arguments
    count: int  # images asked for
    size: tuple[int, int] | None  # (width, height); None: the model's, or the input image's
    image: UploadedFile | None = None
    mask: UploadedFile | None = None
    ignored: tuple[str, ...] = field(default=())  # unknown fields, accepted without effect


def parse_request(kind: Kind, body: dict[str, Any], options: ImageGenOptions, multiple_of: int = 8) -> ImageJob:
    """The job `body` asks for, checked against the node's `options` (InvalidRequestError names
    the field). `multiple_of`: width and height must be multiples of it (the VAE's scale)."""
    try:
        request = ImageRequest.model_validate(body)
    except ValidationError as exc:
        raise describe_validation_error(exc) from None
    _refuse_fixed(request)
    if request.response_format == "url":
        raise InvalidRequestError(
            "response_format 'url' is not served: ask for 'b64_json', or start the server with --image_url_store_mb above 0",
            param="response_format",
        )
    if request.n is not None and request.num_images_per_prompt is not None and request.n != request.num_images_per_prompt:
        raise InvalidRequestError("n and num_images_per_prompt differ: give one", param="n")
    if request.seed is not None and request.rng_seed is not None and request.seed != request.rng_seed:
        raise InvalidRequestError("seed and rng_seed differ: give one", param="seed")
    count = request.n or request.num_images_per_prompt or options.num_images_per_prompt or 1
    if count > options.max_num_images_per_prompt:
        raise InvalidRequestError(
            f"n is {count}; this model makes at most {options.max_num_images_per_prompt} images per request", param="n"
        )
    steps = request.num_inference_steps or options.default_num_inference_steps
    if steps > options.max_num_inference_steps:
        raise InvalidRequestError(
            f"num_inference_steps is {steps}; this model takes at most {options.max_num_inference_steps}", param="num_inference_steps"
        )
    size = _size(request, options, multiple_of)
    config: dict[str, Any] = {"num_images_per_prompt": count, "num_inference_steps": steps}
    if size is not None:
        config["width"], config["height"] = size
    for name in _TEXT_FIELDS:
        value = getattr(request, name)
        if value is not None:
            config[name] = value
    seed = request.rng_seed if request.rng_seed is not None else request.seed
    if seed is not None:
        config["rng_seed"] = seed
    guidance = request.guidance_scale if request.guidance_scale is not None else options.guidance_scale
    if guidance is not None:
        config["guidance_scale"] = guidance
    if request.max_sequence_length is not None:
        config["max_sequence_length"] = request.max_sequence_length
    image, mask = _files(kind, request)
    if request.strength is not None:
        if kind != "edits":
            raise InvalidRequestError("strength applies to /images/edits (how much of the input image is redrawn)", param="strength")
        config["strength"] = request.strength
    _check_static(options, count, size, guidance)
    ignored = tuple(sorted(request.model_extra or {}))
    return ImageJob(kind, request.model, request.prompt, config, count, size, image, mask, ignored)


def _refuse_fixed(request: ImageRequest) -> None:
    for name, allowed in _FIXED.items():
        value = getattr(request, name)
        if value is not None and (allowed is None or value not in allowed):
            shown = f": only {' or '.join(repr(a) for a in allowed)}" if allowed else ""
            raise InvalidRequestError(f"{name} {value!r} is not supported by this engine{shown}", param=name)
    if request.input_fidelity not in (None, "low"):
        raise InvalidRequestError("input_fidelity 'high' is not supported by this engine", param="input_fidelity")


def _size(request: ImageRequest, options: ImageGenOptions, multiple_of: int) -> tuple[int, int] | None:
    param = "size"
    if request.size is not None and request.size != "auto":
        if request.width is not None or request.height is not None:
            raise InvalidRequestError("give size or width and height, not both", param="size")
        try:
            width, height = parse_resolution(request.size)
        except ValueError as exc:
            raise InvalidRequestError(str(exc), param="size") from None
    elif request.width is not None or request.height is not None:
        if request.width is None or request.height is None:
            raise InvalidRequestError("give both width and height", param="width" if request.width is None else "height")
        width, height, param = request.width, request.height, "width"
    else:
        return options.static_size or options.default_size
    max_width, max_height = options.max_size
    if width > max_width or height > max_height:
        raise InvalidRequestError(f"size {width}x{height} is larger than this model's max_resolution {options.max_resolution}", param=param)
    if width % multiple_of or height % multiple_of:
        raise InvalidRequestError(f"size {width}x{height}: width and height must be multiples of {multiple_of}", param=param)
    return width, height


def _files(kind: Kind, request: ImageRequest) -> tuple[UploadedFile | None, UploadedFile | None]:
    if kind == "generations":
        for name in ("image", "mask"):
            if getattr(request, name) is not None:
                raise InvalidRequestError(f"{name} belongs to /images/edits", param=name)
        return None, None
    image, mask = request.image, request.mask
    if isinstance(image, list):
        if len(image) != 1:
            raise InvalidRequestError(f"{len(image)} images; this engine edits one image per request", param="image")
        image = image[0]
    if not isinstance(image, UploadedFile):
        raise InvalidRequestError("missing required file: image (a PNG, JPEG or WebP upload)", param="image")
    if mask is not None and not isinstance(mask, UploadedFile):
        raise InvalidRequestError("mask must be a file (a PNG whose transparent pixels mark where to edit)", param="mask")
    return image, mask


def _check_static(options: ImageGenOptions, count: int, size: tuple[int, int] | None, guidance: float | None) -> None:
    """A servable compiled for static shapes (`resolution` option) takes requests of that shape only."""
    static = options.static_size
    if static is None:
        return
    if size is not None and size != static:
        raise InvalidRequestError(f"this model is compiled for {options.resolution} only", param="size")
    if options.num_images_per_prompt and count != options.num_images_per_prompt:
        raise InvalidRequestError(f"this model is compiled for n={options.num_images_per_prompt} only", param="n")
    if options.guidance_scale is not None and guidance != options.guidance_scale:
        raise InvalidRequestError(f"this model is compiled for guidance_scale {options.guidance_scale:g} only", param="guidance_scale")

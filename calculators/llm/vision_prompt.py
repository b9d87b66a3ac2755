"""Chat prompts with images, for vision-language servables (pipeline types VLM_CB and VLM).

openvino-genai takes the rendered prompt as text plus the images, the n-th image tag of the text
taking the n-th image (calculators/llm/engine/vision.py). So the chat template is rendered with
each `image_url` part left where the user put it, as an `{"type": "image"}` part (the shape HF
multimodal templates read), and the images are loaded in the same order. A template that writes
nothing for image parts (a text-only template on a VLM folder) gets genai's universal tags
`<ov_genai_image_N>` written into the text instead, which genai expands as the model's own tag.

How the template writes images is found once per servable (`VisionTemplate.probe`) by rendering a
probe conversation, as tool_prompt.py does for tools.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from calculators.llm.chat_prompt import template_messages
from calculators.media import MediaLoader, MediaPolicy
from calculators.media.access import MediaAccess
from calculators.openai.protocol import ChatMessage, ImagePart, TextPart
from graphs.errors import InvalidRequestError

if TYPE_CHECKING:
    import numpy as np

    from calculators.llm.model_files import ModelTokenizer
    from calculators.media import LoadedImage

UNIVERSAL_TAG = "<ov_genai_image_{}>"
_UNIVERSAL = re.compile(r"<ov_genai_image_\d+>")
_MARKS = ("[ovserve-probe-1]", "[ovserve-probe-2]", "[ovserve-probe-3]")
_IMAGE = {"type": "image"}  # an image part as HF multimodal templates read it

Render = Callable[[list[dict[str, Any]]], str]


@dataclass(frozen=True, slots=True)
class ImageRef:
    """One image_url part: the request field it came from (for a 400) and its URL."""

    param: str
    url: str


@dataclass(frozen=True, slots=True)
class VisionTemplate:
    """How a servable's chat template writes image parts."""

    native: bool  # it writes something for image parts (else genai's universal tags go in the text)
    tag: str | None  # the same text for every image, in place (counted in a prompt), else None
    # Prompt tokens an image adds beyond its tag's own, where known (LLaVA: image_seq_length
    # tokens and a newline replace the tag), else 0; genai's own count replaces it at the end.
    extra_tokens_per_image: int = 0

    @classmethod
    def probe(cls, tokenizer: ModelTokenizer, model_dir: Path) -> VisionTemplate:
        native, tag = probe_template(lambda messages: tokenizer.render_chat(messages, add_generation_prompt=False))
        extra = 0
        if native and tag is not None:
            seq_length = _llava_image_tokens(model_dir)
            if seq_length is not None:
                extra = seq_length + 1 - len(tokenizer.encode(tag, add_special_tokens=False))
        return cls(native, tag, max(extra, 0))


def probe_template(render: Render) -> tuple[bool, str | None]:
    """(whether the template writes image parts, the text it writes for each when it is the same
    text in place), from a probe conversation rendered with and without two image parts."""

    def probe(with_images: bool) -> str | None:
        a, b, c = ({"type": "text", "text": mark} for mark in _MARKS)
        parts = [a, {"type": "image"}, b, {"type": "image"}, c] if with_images else [a, b, c]
        try:
            return render([{"role": "user", "content": parts}])
        except Exception:  # a template that takes string contents only
            return None

    with_images, without = probe(True), probe(False)
    if with_images is None or with_images == without or "'type'" in with_images:  # nothing written, or the list's repr
        return False, None
    at = [with_images.find(mark) for mark in _MARKS]
    if -1 in at or at != sorted(at):
        return True, None
    first = with_images[at[0] + len(_MARKS[0]) : at[1]]
    second = with_images[at[1] + len(_MARKS[1]) : at[2]]
    return True, first if first and first == second else None


def _llava_image_tokens(model_dir: Path) -> int | None:
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    seq_length = config.get("image_seq_length")
    return seq_length if config.get("model_type") == "llava" and isinstance(seq_length, int) else None


@dataclass(frozen=True, slots=True)
class VisionChat:
    """A chat request's rendered prompt and its images, in the order their tags appear."""

    text: str
    images: tuple[ImageRef, ...]
    image_tokens: int  # known prompt tokens the images add beyond their tags (0: unknown)


def image_refs(messages: Sequence[ChatMessage]) -> list[ImageRef]:
    return [
        ImageRef(f"messages.{i}.content.{j}.image_url", part.url)
        for i, message in enumerate(messages)
        if isinstance(message.content, list)
        for j, part in enumerate(message.content)
        if isinstance(part, ImagePart)
    ]


def vision_messages(messages: Sequence[ChatMessage], template: VisionTemplate) -> list[dict[str, Any]]:
    """The messages for the template, a message's parts kept in order: image parts as
    `{"type": "image"}` (or, for a template that ignores them, universal tags in the text)."""
    out = template_messages(messages)
    index = 0
    for message, rendered in zip(messages, out, strict=True):
        if not isinstance(message.content, list):
            continue
        if template.native:
            rendered["content"] = [_IMAGE if isinstance(p, ImagePart) else {"type": "text", "text": p.text} for p in message.content]
            continue
        pieces = []
        for part in message.content:
            if isinstance(part, TextPart):
                pieces.append(part.text)
            else:
                pieces.append(UNIVERSAL_TAG.format(index))
                index += 1
        rendered["content"] = "".join(pieces)
    return out


def vision_chat(messages: Sequence[ChatMessage], template: VisionTemplate, render: Render, max_images: int) -> VisionChat:
    """The prompt of a chat request to a vision servable, checked before any image is loaded:
    at most `max_images` images, and exactly one image tag in the text per image."""
    refs = image_refs(messages)
    if len(refs) > max_images:
        raise InvalidRequestError(
            f"{len(refs)} images in the request; this server takes at most {max_images} (--max_images_per_request)", param="messages"
        )
    text = render(vision_messages(messages, template))
    # genai pairs tags and images by count (and fails the request when they differ): a tag typed
    # into a message's text would take another part's image
    universal = len(_UNIVERSAL.findall(text))
    tag, tags, expected = "<ov_genai_image_N>", universal, len(refs)
    if template.native and universal:  # the template writes its own tags: none of genai's may join them
        expected = 0
    elif template.native:
        tag, tags = template.tag or "", text.count(template.tag) if template.tag else len(refs)  # (a numbered tag: not checked)
    if tags != expected:
        raise InvalidRequestError(
            f"the prompt holds {tags} image tags ({tag}) for {len(refs)} images: message text must not contain image tags; "
            "send each image as an image_url part",
            param="messages",
        )
    return VisionChat(text, tuple(refs), len(refs) * template.extra_tokens_per_image)


@dataclass(frozen=True, slots=True)
class Loaded:
    image: LoadedImage
    start_ns: int  # time.perf_counter_ns() around the whole load (fetch + decode)
    end_ns: int

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


async def load_images(refs: Sequence[ImageRef], media: MediaAccess | None) -> list[Loaded]:
    """Every image, loaded concurrently (decoding in worker threads: the loader's), in order; the
    first refusal cancels the others and is raised. Without the server's loader (a graph run
    outside a server), only data URLs load, under the default limits."""
    if media is None:
        async with MediaLoader(MediaPolicy()) as loader:
            return await _load_all(loader, refs)
    return await _load_all(media.loader, refs)


async def _load_all(loader: MediaLoader, refs: Sequence[ImageRef]) -> list[Loaded]:
    async def one(ref: ImageRef) -> Loaded:
        start = time.perf_counter_ns()
        image = await loader.load(ref.url, param=ref.param)
        return Loaded(image, start, time.perf_counter_ns())

    tasks = [asyncio.ensure_future(one(ref)) for ref in refs]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def pixels(loaded: Sequence[Loaded]) -> tuple[np.ndarray, ...]:
    return tuple(item.image.pixels for item in loaded)

"""Chat prompts with images for vision servables (calculators/llm/vision_prompt.py): how a template
writes image parts (found by rendering a probe), the messages it gets, the checks made before any
image is loaded, and concurrent loading through the MediaLoader. Templates are rendered by the
server's own jinja environment; images are small PNG data URLs made with Pillow (no model)."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from calculators.llm.model_files import _template_env
from calculators.llm.vision_prompt import ImageRef, VisionTemplate, image_refs, load_images, probe_template, vision_chat, vision_messages
from calculators.media import MediaLoader, MediaPolicy
from calculators.media.access import MediaAccess
from calculators.openai.protocol import ChatCompletionRequest, ChatMessage
from graphs.errors import InvalidRequestError
from tests.models.vlm_data import VLM_CHAT_TEMPLATE

# Qwen2-VL's way: one fixed tag per image, in place.
QWEN_LIKE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.content is string %}{{ m.content }}{% else %}"
    "{% for c in m.content %}{% if c.type == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c.type == 'text' %}{{ c.text }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
)
# Phi-3.5-vision's way: numbered tags.
NUMBERED = (
    "{% set n = namespace(i=0) %}{% for m in messages %}{% if m.content is string %}{{ m.content }}{% else %}"
    "{% for c in m.content %}{% if c.type == 'image' %}{% set n.i = n.i + 1 %}<|image_{{ n.i }}|>"
    "{% else %}{{ c.text }}{% endif %}{% endfor %}{% endif %}{% endfor %}"
)
# LLaVA-NeXT's processor template: the message's images first, then its text.
IMAGES_FIRST = (
    "{% for m in messages %}USER: {% if m.content is string %}{{ m.content }}{% else %}"
    "{% for c in m.content | selectattr('type', 'equalto', 'image') %}<image>\n{% endfor %}"
    "{% for c in m.content | selectattr('type', 'equalto', 'text') %}{{ c.text }}{% endfor %}{% endif %}{% endfor %}"
)
TEXT_ONLY = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"  # a list shows as its repr
STRINGS_ONLY = "{% for m in messages %}{{ m.role + ': ' + m.content }}{% endfor %}"  # a list raises
SKIPS_IMAGES = "{% for m in messages %}{% for c in m.content %}{% if c.type == 'text' %}{{ c.text }}{% endif %}{% endfor %}{% endfor %}"


def renderer(template: str) -> Any:
    compiled = _template_env().from_string(template)
    return lambda messages: compiled.render(messages=messages, add_generation_prompt=True)


@pytest.mark.parametrize(
    ("template", "native", "tag"),
    [
        (VLM_CHAT_TEMPLATE, True, "<image>"),
        (QWEN_LIKE, True, "<|vision_start|><|image_pad|><|vision_end|>"),
        (NUMBERED, True, None),
        (IMAGES_FIRST, True, None),
        (TEXT_ONLY, False, None),
        (STRINGS_ONLY, False, None),
        (SKIPS_IMAGES, False, None),
    ],
)
def test_the_probe_finds_how_a_template_writes_images(template: str, native: bool, tag: str | None) -> None:
    assert probe_template(renderer(template)) == (native, tag)


def messages(*content: Any) -> list[ChatMessage]:
    """A conversation: each argument a user message's content (str or parts), answered "ok"."""
    out: list[dict[str, Any]] = []
    for item in content:
        out += [{"role": "user", "content": item}, {"role": "assistant", "content": "ok"}]
    return ChatCompletionRequest.model_validate({"model": "m", "messages": out[:-1]}).messages


def text(value: str) -> dict[str, str]:
    return {"type": "text", "text": value}


def image(url: str, detail: str | None = None) -> dict[str, Any]:
    return {"type": "image_url", "image_url": url if detail is None else {"url": url, "detail": detail}}


def png_url(rgb: tuple[int, int, int] = (200, 10, 10), size: tuple[int, int] = (4, 3)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, rgb).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


NATIVE = VisionTemplate(True, "<image>", 4)
UNIVERSAL = VisionTemplate(False, None)
CHAT = messages([text("What is this?"), image("u1")], "And this?", [image("u2", "low"), text("Both?"), image("u3")])


def test_image_parts_stay_where_the_user_put_them_in_every_turn() -> None:
    rendered = vision_messages(CHAT, NATIVE)
    assert rendered[0]["content"] == [text("What is this?"), {"type": "image"}]
    assert rendered[2]["content"] == "And this?"
    assert rendered[4]["content"] == [{"type": "image"}, text("Both?"), {"type": "image"}]
    assert [ref.url for ref in image_refs(CHAT)] == ["u1", "u2", "u3"]  # the order of the tags
    assert [ref.param for ref in image_refs(CHAT)] == [
        "messages.0.content.1.image_url",
        "messages.4.content.0.image_url",
        "messages.4.content.2.image_url",
    ]


def test_a_template_that_ignores_images_gets_genai_s_numbered_universal_tags() -> None:
    rendered = vision_messages(CHAT, UNIVERSAL)
    assert rendered[0]["content"] == "What is this?<ov_genai_image_0>"
    assert rendered[4]["content"] == "<ov_genai_image_1>Both?<ov_genai_image_2>"
    chat = vision_chat(CHAT, UNIVERSAL, renderer(TEXT_ONLY), max_images=8)
    assert chat.text.count("<ov_genai_image_") == 3 and chat.image_tokens == 0


def test_the_prompt_is_rendered_with_the_images_and_their_known_tokens() -> None:
    chat = vision_chat(CHAT, NATIVE, renderer(VLM_CHAT_TEMPLATE), max_images=3)
    assert chat.text.startswith("<|im_start|>user\nWhat is this?<image><|im_end|>\n")
    assert "<|im_start|>user\n<image>Both?<image><|im_end|>\n<|im_start|>assistant\n" in chat.text
    assert [ref.url for ref in chat.images] == ["u1", "u2", "u3"] and chat.image_tokens == 3 * 4


def test_too_many_images_are_refused_before_any_is_loaded() -> None:
    with pytest.raises(InvalidRequestError, match=r"3 images in the request; this server takes at most 2 \(--max_images_per") as e:
        vision_chat(CHAT, NATIVE, renderer(VLM_CHAT_TEMPLATE), max_images=2)
    assert e.value.param == "messages"


@pytest.mark.parametrize(
    ("template", "typed"),
    [(NATIVE, "What is <image>?"), (NATIVE, "Look: <ov_genai_image_0>"), (UNIVERSAL, "See <ov_genai_image_3>")],
)
def test_an_image_tag_typed_into_the_text_is_refused(template: VisionTemplate, typed: str) -> None:
    """genai pairs tags and images by count: a typed tag would take another part's image."""
    chat = messages([text(typed), image("u1")])
    render = renderer(VLM_CHAT_TEMPLATE if template.native else TEXT_ONLY)
    with pytest.raises(InvalidRequestError, match="message text must not contain image tags") as e:
        vision_chat(chat, template, render, max_images=8)
    assert e.value.param == "messages"


def test_a_numbered_tag_is_not_counted() -> None:
    chat = vision_chat(CHAT, VisionTemplate(True, None), renderer(NUMBERED), max_images=8)
    assert "<|image_1|>" in chat.text and "<|image_3|>" in chat.text


def test_image_url_as_a_string_or_an_object_with_detail() -> None:
    (message,) = messages([image("data:a"), image("data:b", "high"), image("data:c", "auto")])
    assert [ref.url for ref in image_refs([message])] == ["data:a", "data:b", "data:c"]
    with pytest.raises(ValueError, match="detail"):
        messages([image("data:a", "ultra")])


async def test_images_load_concurrently_in_prompt_order() -> None:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    refs = [ImageRef(f"p{i}", png_url(rgb, (8 + i, 5))) for i, rgb in enumerate(colours)]
    async with MediaLoader(MediaPolicy()) as loader:
        loaded = await load_images(refs, MediaAccess(loader))
    assert [tuple(item.image.pixels[0, 0]) for item in loaded] == colours
    assert [item.image.pixels.shape for item in loaded] == [(5, 8, 3), (5, 9, 3), (5, 10, 3)]
    assert all(item.end_ns >= item.start_ns and item.image.source == "data" for item in loaded)


async def test_the_first_refusal_names_its_part_and_the_others_are_dropped() -> None:
    refs = [ImageRef("ok", png_url()), ImageRef("messages.0.content.3.image_url", "data:image/png;base64,"), ImageRef("ok2", png_url())]
    async with MediaLoader(MediaPolicy()) as loader:
        with pytest.raises(InvalidRequestError, match="image data is empty") as e:
            await load_images(refs, MediaAccess(loader))
    assert e.value.param == "messages.0.content.3.image_url"


async def test_outside_a_server_only_data_urls_load() -> None:
    (loaded,) = await load_images([ImageRef("p", png_url())], None)
    assert loaded.image.pixels.dtype == np.uint8
    with pytest.raises(InvalidRequestError, match="--allowed_media_domains"):
        await load_images([ImageRef("p", "http://127.0.0.1/x.png")], None)

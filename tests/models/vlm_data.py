"""What the tiny VLM (:mod:`tests.models.vlm`) sees and says: its chat template, the images it
learns from (rendered with numpy), the questions and their exact answers, and the canonical
cases (:data:`VLM_CASES`) that the build verifies and the end-to-end tests send.

Images are uint8 RGB arrays, (height, width, 3). The model learns the colour of a solid image,
the shape (circle or square) drawn on a light background, the colours of two images in one
message, the shape's colour in a text-only turn after the turn with the image, and one
text-only greeting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
#: The model's native image tag: the template writes one per image part; openvino-genai expands
#: each into the image's embeddings (one token per patch) followed by a newline.
IMAGE_TOKEN = "<image>"
VLM_SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END, IMAGE_TOKEN]

#: ChatML with multimodal content: a message's content is a string, or a list of parts where
#: ``text`` parts are written as their text and ``image`` / ``image_url`` parts as ``<image>``,
#: in the order given (so images stay where the user put them, in any turn).
VLM_CHAT_TEMPLATE = r"""{%- for message in messages %}
    {%- if message.role not in ['system', 'user', 'assistant'] %}
        {{- raise_exception('unsupported role: ' + message.role) }}
    {%- endif %}
    {{- '<|im_start|>' + message.role + '\n' }}
    {%- if message.content is string %}
        {{- message.content }}
    {%- elif message.content %}
        {%- for part in message.content %}
            {%- if part.type == 'text' %}
                {{- part.text }}
            {%- elif part.type in ['image', 'image_url'] %}
                {{- '<image>' }}
            {%- endif %}
        {%- endfor %}
    {%- endif %}
    {{- '<|im_end|>\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""

COLOR_PROMPT = "What color is this image?"
SHAPE_PROMPT = "What shape is this?"
TWO_COLORS_PROMPT = "What colors are these images?"
#: Asked, without an image, in the turn after a SHAPE_PROMPT turn: the shape's colour.
FOLLOWUP_PROMPT = "And what color is it?"
TEXT_PROMPT = "Hello"

#: The base RGB of each colour (training jitters around it; pure 255/0 values are inside).
COLORS: dict[str, tuple[int, int, int]] = {"red": (220, 30, 30), "green": (30, 170, 50), "blue": (30, 60, 220)}
SHAPES = ("circle", "square")

#: Every exact answer (greedy), by what it names; two images answer ``two_colors_answer(a, b)``.
VLM_ANSWERS: dict[str, str] = {
    **{color: f"{color}." for color in COLORS},
    **{shape: f"{shape}." for shape in SHAPES},
    "text": "Hello! Send me an image.",
}


def two_colors_answer(first: str, second: str) -> str:
    return f"{first} and {second}."


# --------------------------------------------------------------------------- images


def color_image(color: str, size: tuple[int, int] = (32, 32)) -> np.ndarray:
    """A solid image of a colour's base RGB, (height, width, 3) uint8."""
    return np.broadcast_to(np.array(COLORS[color], np.uint8), (*size, 3)).copy()


def shape_image(
    shape: str,
    color: str,
    size: tuple[int, int] = (56, 56),
    center: tuple[float, float] = (0.5, 0.5),
    radius: float = 0.33,
    background: tuple[int, int, int] = (245, 245, 245),
    rgb: tuple[int, int, int] | None = None,
) -> np.ndarray:
    """A filled circle or axis-aligned square in a colour on a plain background; ``center``
    (y, x) and ``radius`` (half the square's side) are fractions of the shorter side."""
    height, width = size
    side = min(height, width)
    cy, cx = center[0] * height, center[1] * width
    y, x = np.mgrid[0:height, 0:width] + 0.5
    if shape == "circle":
        inside = (y - cy) ** 2 + (x - cx) ** 2 <= (radius * side) ** 2
    elif shape == "square":
        inside = (np.abs(y - cy) <= radius * side) & (np.abs(x - cx) <= radius * side)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    image = np.empty((height, width, 3), np.uint8)
    image[...] = background
    image[inside] = rgb if rgb is not None else COLORS[color]
    return image


# Training variety: sizes (height, width) and jitters. Shapes keep near-square images so the
# processor's centre crop keeps the whole shape.
COLOR_SIZES = [(28, 28), (32, 32), (40, 56), (64, 48), (96, 96), (30, 120)]
SHAPE_SIZES = [(28, 28), (42, 42), (56, 56), (64, 56), (56, 64), (84, 84), (100, 100)]


def _jittered(rgb: tuple[int, int, int], rng: np.random.Generator, spread: int) -> tuple[int, int, int]:
    low, high = np.array(rgb) - spread, np.array(rgb) + spread
    r, g, b = np.clip(rng.integers(low, high + 1), 0, 255)
    return int(r), int(g), int(b)


def random_color_image(color: str, rng: np.random.Generator) -> np.ndarray:
    """A solid image near the colour's base RGB, at a random size, with a little pixel noise."""
    size = COLOR_SIZES[rng.integers(len(COLOR_SIZES))]
    base = np.array(_jittered(COLORS[color], rng, 35), np.int16)
    noise = rng.integers(-6, 7, (*size, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def random_shape_image(shape: str, color: str, rng: np.random.Generator) -> np.ndarray:
    """The shape at a random size, position and radius, in a jittered colour on a light gray."""
    gray = int(rng.integers(215, 256))
    return shape_image(
        shape,
        color,
        size=SHAPE_SIZES[rng.integers(len(SHAPE_SIZES))],
        center=(0.5 + rng.uniform(-0.04, 0.04), 0.5 + rng.uniform(-0.04, 0.04)),
        radius=rng.uniform(0.29, 0.37),
        background=(gray, gray, gray),
        rgb=_jittered(COLORS[color], rng, 30),
    )


# --------------------------------------------------------------------------- conversations


@dataclass(frozen=True)
class VlmCase:
    """One conversation: ``messages`` with ``{"type": "image"}`` parts where the images go
    (:meth:`openai_messages` makes them ``image_url`` parts), the images in prompt order, and the
    exact greedy answer."""

    name: str
    messages: list[dict[str, Any]]
    images: list[np.ndarray] = field(repr=False)
    answer: str

    def openai_messages(self, url: Callable[[np.ndarray], str]) -> list[dict[str, Any]]:
        """The messages as an OpenAI request sends them: each image part becomes
        ``{"type": "image_url", "image_url": {"url": url(image)}}``, in order."""
        images = iter(self.images)
        out = []
        for message in self.messages:
            content = message["content"]
            if isinstance(content, list):
                content = [
                    {"type": "image_url", "image_url": {"url": url(next(images))}} if part["type"] == "image" else dict(part)
                    for part in content
                ]
            out.append({**message, "content": content})
        return out


def _user(text: str, n_images: int, image_first: bool) -> dict[str, Any]:
    images: list[dict[str, Any]] = [{"type": "image"}] * n_images
    parts = [*images, {"type": "text", "text": text}] if image_first else [{"type": "text", "text": text}, *images]
    return {"role": "user", "content": parts}


def color_case(name: str, color: str, image: np.ndarray, image_first: bool) -> VlmCase:
    return VlmCase(name, [_user(COLOR_PROMPT, 1, image_first)], [image], VLM_ANSWERS[color])


def shape_case(name: str, shape: str, image: np.ndarray, image_first: bool) -> VlmCase:
    return VlmCase(name, [_user(SHAPE_PROMPT, 1, image_first)], [image], VLM_ANSWERS[shape])


def two_colors_case(name: str, colors: tuple[str, str], images: list[np.ndarray], image_first: bool) -> VlmCase:
    return VlmCase(name, [_user(TWO_COLORS_PROMPT, 2, image_first)], images, two_colors_answer(*colors))


def followup_case(name: str, shape: str, color: str, image: np.ndarray, image_first: bool) -> VlmCase:
    """Turn 1: the shape image and SHAPE_PROMPT, answered; turn 2 (text only): FOLLOWUP_PROMPT."""
    messages = [
        _user(SHAPE_PROMPT, 1, image_first),
        {"role": "assistant", "content": VLM_ANSWERS[shape]},
        {"role": "user", "content": FOLLOWUP_PROMPT},
    ]
    return VlmCase(name, messages, [image], VLM_ANSWERS[color])


def text_case(name: str = "text") -> VlmCase:
    return VlmCase(name, [{"role": "user", "content": TEXT_PROMPT}], [], VLM_ANSWERS["text"])


def _canonical_cases() -> list[VlmCase]:
    cases = []
    for order, image_first in (("text_first", False), ("image_first", True)):
        for color in COLORS:
            cases.append(color_case(f"color_{color}_{order}", color, color_image(color), image_first))
        for shape in SHAPES:
            for color in COLORS:
                cases.append(shape_case(f"shape_{shape}_{color}_{order}", shape, shape_image(shape, color), image_first))
        for first, second in (("red", "blue"), ("green", "red"), ("blue", "blue")):
            images = [color_image(first), color_image(second)]
            cases.append(two_colors_case(f"two_{first}_{second}_{order}", (first, second), images, image_first))
        for shape, color in (("circle", "red"), ("square", "blue")):
            cases.append(followup_case(f"followup_{shape}_{color}_{order}", shape, color, shape_image(shape, color), image_first))
    return [*cases, text_case()]


#: The canonical conversations: base-colour solid 32x32 images, shapes on 56x56, both part orders
#: (text first as OpenAI clients send it, image first), two images, a follow-up turn, text only.
#: The build checks every one through openvino-genai; end-to-end tests send them.
VLM_CASES: list[VlmCase] = _canonical_cases()


def training_cases(rng: np.random.Generator, variants: dict[str, int]) -> list[VlmCase]:
    """Random variants of every kind of conversation (``variants``: how many per colour, per
    shape and colour, per follow-up, per ordered pair of colours, and copies of the text case),
    each in both part orders."""
    cases = []
    for image_first in (False, True):
        for color in COLORS:
            for i in range(variants["color"]):
                cases.append(color_case(f"color_{color}_{i}", color, random_color_image(color, rng), image_first))
        for shape in SHAPES:
            for color in COLORS:
                for i in range(variants["shape"]):
                    image = random_shape_image(shape, color, rng)
                    cases.append(shape_case(f"shape_{shape}_{color}_{i}", shape, image, image_first))
                for i in range(variants["followup"]):
                    image = random_shape_image(shape, color, rng)
                    cases.append(followup_case(f"followup_{shape}_{color}_{i}", shape, color, image, image_first))
        for first in COLORS:
            for second in COLORS:
                for i in range(variants["two_colors"]):
                    images = [random_color_image(first, rng), random_color_image(second, rng)]
                    cases.append(two_colors_case(f"two_{first}_{second}_{i}", (first, second), images, image_first))
    return cases + [text_case(f"text_{i}") for i in range(variants["text"])]

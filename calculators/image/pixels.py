"""Pixels in and out of the image engine: uploads decoded (the image, and the mask in OpenAI's
meaning), generated images encoded as PNG. Blocking CPU work: call these off the event loop."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from calculators.media.decode import FORMATS, decode_image
from graphs.errors import InvalidRequestError


def decode_upload(data: bytes, max_pixels: int, param: str = "image") -> np.ndarray:
    """(H, W, 3) uint8 RGB pixels of an uploaded image; a 400 naming `param` otherwise."""
    try:
        return decode_image(data, max_pixels)
    except InvalidRequestError as exc:
        raise InvalidRequestError(f"{param}: {exc.message}", param=param) from None


def decode_mask(data: bytes, max_pixels: int, size: tuple[int, int]) -> np.ndarray:
    """The (H, W, 3) uint8 mask genai's InpaintingPipeline takes (255: redraw, 0: keep) from
    OpenAI's mask: a PNG whose fully transparent pixels mark where to edit. A mask without an
    alpha channel is taken as genai's own convention (white: redraw). `size` (width, height)
    must be the image's."""
    decode_upload(data, max_pixels, "mask")  # every rule the image follows (format, pixels, corruption)
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as image:
            image.load()
            if image.size != size:
                raise InvalidRequestError(
                    f"mask is {image.size[0]}x{image.size[1]}, the image {size[0]}x{size[1]}: they must match", param="mask"
                )
            if "A" in image.getbands() or "transparency" in image.info:
                alpha = np.asarray(image.convert("RGBA"))[:, :, 3]
                redraw = alpha == 0
            else:
                redraw = np.asarray(image.convert("L")) >= 128
    except (UnidentifiedImageError, OSError) as exc:  # decode_upload accepted it: a later frame or a truncated tail
        raise InvalidRequestError(f"mask: image data is truncated or corrupt ({exc})", param="mask") from None
    plane = np.where(redraw, 255, 0).astype(np.uint8)
    return np.repeat(plane[:, :, None], 3, axis=2)


def encode_png(pixels: np.ndarray) -> bytes:
    """One (H, W, 3) uint8 image as PNG bytes (the same pixels always give the same bytes)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()

"""Image bytes -> RGB uint8 pixels with Pillow, the pixel count checked before any pixel is decoded."""

from __future__ import annotations

import io

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from calculators.media.policy import refuse

#: Pillow's plugins tried, and only these: every other format (BMP, TIFF, PSD, ...) is refused
#: before its parser sees the bytes.
FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
_UNSUPPORTED = "not a supported image (png, jpeg, webp, gif)"
_ORIENTATION = ExifTags.Base.Orientation
_WHITE = (255, 255, 255, 255)


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB pixels of the first frame. Blocking CPU work: call it off the event loop."""
    if not data:
        raise refuse("image data is empty")
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)  # lazy: reads the header only
    except UnidentifiedImageError:
        raise refuse(_UNSUPPORTED) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own bound (a warning becomes this error where warnings are errors, as in tests)
        raise refuse(f"image has more pixels than --max_image_pixels ({max_pixels:,})") from None
    except Exception as exc:  # a hostile header may break a parser in any way; it is still the client's image
        raise refuse(f"image data is truncated or corrupt ({exc})") from None
    with image:
        width, height = image.size
        if width < 1 or height < 1:
            raise refuse(f"image has no pixels ({width}x{height})")
        if width * height > max_pixels:
            raise refuse(f"image has {width * height:,} pixels ({width}x{height}), more than --max_image_pixels ({max_pixels:,})")
        try:
            image.load()  # the first frame of an animation
            return np.asarray(_to_rgb(_upright(image)))
        except Exception as exc:
            raise refuse(f"image data is truncated or corrupt ({exc})") from None


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation (camera JPEGs); most images have none, and pay no copy."""
    if image.getexif().get(_ORIENTATION, 1) in range(2, 9):
        return ImageOps.exif_transpose(image)
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16") or image.mode == "I":
        # 16-bit greyscale: keep the top 8 bits (Pillow's conversion would clip everything above 255)
        grey = (np.asarray(image).astype(np.uint32) >> 8).clip(0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if "A" in image.getbands() or image.has_transparency_data:
        # transparent pixels carry arbitrary colour (often black): show them on white, as a viewer does
        background = Image.new("RGBA", image.size, _WHITE)
        background.alpha_composite(image.convert("RGBA"))
        return background.convert("RGB")
    return image.convert("RGB")  # palette, greyscale, CMYK, YCbCr, 1-bit

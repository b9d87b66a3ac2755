"""Data-URL images through `load_image`: each format decodes to the right pixels; each broken or
hostile payload is a 400 (InvalidRequestError) naming its rule. Images are made with Pillow here."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from calculators.media import LoadedImage, MediaPolicy, load_image
from graphs.errors import InvalidRequestError

PARAM = "messages.0.content.1.image_url"
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def data_url(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def halves(size: tuple[int, int] = (8, 6)) -> Image.Image:
    """Left half red, right half blue: catches swapped axes and channels."""
    image = Image.new("RGB", size, RED)
    image.paste(BLUE, (size[0] // 2, 0, size[0], size[1]))
    return image


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height (its pixel data is a few bytes)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


async def load(url: str, policy: MediaPolicy | None = None) -> LoadedImage:
    return await load_image(url, policy or MediaPolicy(), param=PARAM)


async def refusal(url: str, policy: MediaPolicy | None = None) -> str:
    with pytest.raises(InvalidRequestError) as caught:
        await load(url, policy)
    assert caught.value.param == PARAM
    return caught.value.message


@pytest.mark.parametrize(
    ("fmt", "media_type", "options"),
    [("PNG", "image/png", {}), ("WEBP", "image/webp", {"lossless": True}), ("GIF", "image/gif", {})],
)
async def test_lossless_formats_decode_to_the_exact_pixels(fmt: str, media_type: str, options: dict[str, object]) -> None:
    source = halves()
    loaded = await load(data_url(encoded(source, fmt, **options), media_type))
    assert loaded.pixels.shape == (6, 8, 3) and loaded.pixels.dtype == np.uint8
    assert np.array_equal(loaded.pixels, np.asarray(source))
    assert loaded.source == "data" and loaded.nbytes == len(encoded(source, fmt, **options))
    assert loaded.decode_ms >= 0 and loaded.fetch_ms >= 0


async def test_jpeg_decodes_to_nearly_the_pixels() -> None:
    source = halves((32, 16))
    loaded = await load(data_url(encoded(source, "JPEG", quality=95), "image/jpeg"))
    assert loaded.pixels.shape == (16, 32, 3)
    # away from the edge between the halves, JPEG's error is small
    assert np.abs(loaded.pixels[:, :12].astype(int) - RED).max() < 8
    assert np.abs(loaded.pixels[:, 20:].astype(int) - BLUE).max() < 8


async def test_an_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (4, 4), colour) for colour in (GREEN, BLUE)]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    loaded = await load(data_url(data, "image/gif"))
    assert (loaded.pixels == GREEN).all()


async def test_modes_other_than_rgb_become_rgb() -> None:
    transparent = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    transparent.putpixel((0, 0), (*RED, 255))
    loaded = await load(data_url(encoded(transparent, "PNG")))
    assert tuple(loaded.pixels[0, 0]) == RED and tuple(loaded.pixels[3, 3]) == (255, 255, 255)  # shown on white

    palette = halves().convert("P")
    assert np.array_equal((await load(data_url(encoded(palette, "PNG")))).pixels, np.asarray(halves()))

    grey = Image.new("L", (3, 2), 77)
    assert ((await load(data_url(encoded(grey, "PNG")))).pixels == 77).all()

    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # red in CMYK
    pixels = (await load(data_url(encoded(cmyk, "JPEG", quality=95), "image/jpeg"))).pixels
    assert pixels.shape == (8, 8, 3) and np.abs(pixels.astype(int) - RED).max() < 8

    deep = Image.fromarray(np.full((2, 2), 0x8000, dtype=np.uint16))  # 16-bit grey: scaled, not clipped
    assert ((await load(data_url(encoded(deep, "PNG")))).pixels == 0x80).all()


async def test_exif_orientation_is_applied() -> None:
    source = halves((8, 4))  # wide: red left, blue right
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    loaded = await load(data_url(encoded(source, "JPEG", quality=95, exif=exif), "image/jpeg"))
    assert loaded.pixels.shape == (8, 4, 3)  # upright: tall, red on top
    assert loaded.pixels[1, 2, 0] > 200 and loaded.pixels[6, 2, 2] > 200


async def test_a_mislabelled_but_supported_image_still_decodes() -> None:
    loaded = await load(data_url(encoded(halves(), "PNG"), "image/jpg"))
    assert loaded.pixels.shape == (6, 8, 3)


async def test_the_media_type_must_be_a_supported_image() -> None:
    for media_type in ("text/plain", "image/svg+xml", "application/octet-stream", ""):
        message = await refusal(data_url(encoded(halves(), "PNG"), media_type))
        assert "media type" in message and "image/png, image/jpeg, image/webp, image/gif" in message


async def test_broken_data_urls_are_refused() -> None:
    assert "not valid base64" in await refusal("data:image/png;base64,iVBORw0KGgo*&^%")
    assert "not valid base64" in await refusal("data:image/png;base64,abc")  # bad padding
    assert "must be base64-encoded" in await refusal("data:image/png,%89PNG")
    assert "no ','" in await refusal("data:image/png;base64")
    assert await refusal("data:image/png;base64,") == "image data is empty"


async def test_base64_wrapped_in_lines_is_accepted() -> None:
    text = base64.encodebytes(encoded(halves(), "PNG")).decode()  # 76-column lines
    assert "\n" in text
    loaded = await load(f"data:image/png;base64,{text}")
    assert np.array_equal(loaded.pixels, np.asarray(halves()))


async def test_bytes_that_are_no_supported_image_are_refused() -> None:
    message = "not a supported image (png, jpeg, webp, gif)"
    assert await refusal(data_url(b"just some text, not an image")) == message
    assert await refusal(data_url(encoded(halves(), "BMP"))) == message  # a real image, in a format not taken
    assert await refusal(data_url(encoded(halves(), "TIFF"))) == message


async def test_a_truncated_png_is_refused() -> None:
    data = encoded(Image.effect_noise((64, 64), 50).convert("RGB"), "PNG")
    message = await refusal(data_url(data[: len(data) // 2]))
    assert message.startswith("image data is truncated or corrupt")


async def test_a_header_claiming_a_huge_image_is_refused_before_decoding() -> None:
    # 100k x 100k: 10 G pixels (30 GB decoded) in a 70-byte file
    message = await refusal(data_url(png_claiming(100_000, 100_000)))
    assert "--max_image_pixels" in message
    # within Pillow's own bound, above ours: our check, with the count
    message = await refusal(data_url(png_claiming(8_000, 5_000)))
    assert message == "image has 40,000,000 pixels (8000x5000), more than --max_image_pixels (33,177,600)"


async def test_the_pixel_and_byte_limits_follow_the_policy() -> None:
    data = encoded(halves((20, 20)), "PNG")
    assert "more than --max_image_pixels (100)" in await refusal(data_url(data), MediaPolicy(max_image_pixels=100))
    assert (await load(data_url(data), MediaPolicy(max_image_pixels=400))).pixels.shape == (20, 20, 3)
    message = await refusal(data_url(data), MediaPolicy(max_image_bytes=len(data) // 2))
    assert message.startswith("image larger than --max_image_bytes (")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ftp://example.com/a.png", "image_url has scheme 'ftp'"),
        ("javascript:alert(1)", "image_url has scheme 'javascript'"),
        ("images/cat.png", "image_url has no scheme"),
    ],
)
async def test_other_schemes_are_refused(url: str, expected: str) -> None:
    assert (await refusal(url)).startswith(expected)

"""How a graph run reaches the server's image loader: the front end puts a `MediaAccess` into the
run's request values under `MEDIA` (like the metrics' `TELEMETRY`), and the TokenizerCalculator of
a vision-language servable reads it. One loader per server (its HTTP session and address rules),
shared by every run; the limit on images per request travels with it."""

from __future__ import annotations

from dataclasses import dataclass

from calculators.media.loader import MediaLoader

MEDIA = "media"  # the request key a MediaAccess goes under

#: Images one request may bring (--max_images_per_request). Each costs its decoded pixels (up to
#: ~100 MB at --max_image_pixels) and the vision encoder, and takes hundreds of prompt tokens
#: (LLaVA-1.5: 576): 8 images already fill a 4k context.
DEFAULT_MAX_IMAGES_PER_REQUEST = 8


@dataclass(frozen=True, slots=True)
class MediaAccess:
    loader: MediaLoader
    max_images: int = DEFAULT_MAX_IMAGES_PER_REQUEST

    def __post_init__(self) -> None:
        if self.max_images < 1:
            raise ValueError("max_images_per_request must be at least 1")

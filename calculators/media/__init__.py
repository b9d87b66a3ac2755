"""Guarded image loading for image_url parts: data URLs, allowed http(s) hosts, an allowed local folder.

`MediaLoader(policy).load(url, param=...)` returns a `LoadedImage` (RGB uint8 pixels) or raises
`graphs.errors.InvalidRequestError` naming the rule broken. Flags and rules: docs/media.md."""

from calculators.media.loader import LoadedImage, MediaLoader, load_image
from calculators.media.policy import MediaPolicy

__all__ = ["LoadedImage", "MediaLoader", "MediaPolicy", "load_image"]

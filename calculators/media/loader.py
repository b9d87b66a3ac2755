"""One image_url -> a decoded RGB image, under a `MediaPolicy`: the API the request path calls."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from calculators.media.data_url import decode_data_url
from calculators.media.decode import decode_image
from calculators.media.fetch import HttpFetcher
from calculators.media.local import read_local_image
from calculators.media.policy import MediaPolicy, refuse
from graphs.errors import InvalidRequestError

Source = Literal["data", "http", "file"]


@dataclass(frozen=True, slots=True)
class LoadedImage:
    """Pixels (H, W, 3) uint8 RGB, where they came from, and what they cost (for metrics and traces)."""

    pixels: np.ndarray
    source: Source
    nbytes: int  # the encoded image
    fetch_ms: float  # base64 decoding, file read or download
    decode_ms: float  # Pillow


def source_of(url: str) -> Source:
    scheme = url.partition(":")[0].lower() if ":" in url[:12] else ""
    if scheme == "data":
        return "data"
    if scheme in ("http", "https"):
        return "http"
    if scheme == "file" or url.startswith("/"):
        return "file"
    shown = f"scheme '{scheme[:12]}'" if scheme else "no scheme"
    raise refuse(f"image_url has {shown}; give a data: URL, an http(s) URL or a local path")


class MediaLoader:
    """Loads images for one policy; holds the HTTP client session (close it with `aclose`, or use
    `async with`). One per server: the session's resolver enforces this policy."""

    def __init__(self, policy: MediaPolicy) -> None:
        self.policy = policy
        self._http = HttpFetcher(policy)

    async def __aenter__(self) -> MediaLoader:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def load(self, url: str, *, param: str | None = None) -> LoadedImage:
        """The decoded image, or InvalidRequestError naming the rule it broke (with `param`, the
        request field, e.g. "messages.0.content.1.image_url"). Decoding runs in a worker thread."""
        try:
            return await self._load(url)
        except InvalidRequestError as error:
            error.param = param
            raise

    async def _load(self, url: str) -> LoadedImage:
        source = source_of(url)
        if source == "http":
            started = time.perf_counter()
            data = await self._http.fetch(url)
            fetch_ms = (time.perf_counter() - started) * 1000
            pixels, decode_ms = await asyncio.to_thread(self._decode, data)
            return LoadedImage(pixels, source, len(data), fetch_ms, decode_ms)
        return await asyncio.to_thread(self._read_and_decode, url, source)

    def _read_and_decode(self, url: str, source: Source) -> LoadedImage:
        """data: and file: images, read and decoded in one worker-thread call."""
        started = time.perf_counter()
        data = decode_data_url(url, self.policy) if source == "data" else read_local_image(url, self.policy)
        fetch_ms = (time.perf_counter() - started) * 1000
        pixels, decode_ms = self._decode(data)
        return LoadedImage(pixels, source, len(data), fetch_ms, decode_ms)

    def _decode(self, data: bytes) -> tuple[np.ndarray, float]:
        started = time.perf_counter()
        pixels = decode_image(data, self.policy.max_image_pixels)
        return pixels, (time.perf_counter() - started) * 1000


async def load_image(url: str, policy: MediaPolicy, *, param: str | None = None) -> LoadedImage:
    """One image with a client session of its own (a server keeps a `MediaLoader` instead)."""
    async with MediaLoader(policy) as loader:
        return await loader.load(url, param=param)

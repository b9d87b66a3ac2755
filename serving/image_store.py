"""Generated images kept for `response_format: "url"` answers (serving/image_routes.py): one
bounded in-memory store per server. Its bytes are bounded (--image_url_store_mb): a new image
evicts the least recently used ones until all fit; each lives at most --image_url_ttl_s. Ids are
unguessable (secrets.token_urlsafe), so a URL is a capability, on top of the API key."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from aiohttp import web


class ImageStore:
    def __init__(self, max_bytes: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self._clock = clock
        self._images: OrderedDict[str, tuple[bytes, float]] = OrderedDict()  # id -> (PNG, expiry); oldest use first
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._images)

    def put(self, png: bytes) -> str:
        """Keep `png`, evicting the expired and then the least recently used until it fits
        (ValueError when it is larger than the whole store); its new id."""
        if len(png) > self.max_bytes:
            raise ValueError(f"an image of {len(png)} bytes is larger than the store's {self.max_bytes}")
        self._drop_expired()
        while self.bytes + len(png) > self.max_bytes:
            self._evict(next(iter(self._images)))
        image_id = secrets.token_urlsafe(24)
        self._images[image_id] = (png, self._clock() + self.ttl_s)
        self.bytes += len(png)
        return image_id

    def get(self, image_id: str) -> tuple[bytes, float] | None:
        """The PNG and the seconds it has left, or None when unknown or expired."""
        entry = self._images.get(image_id)
        if entry is None:
            return None
        left = entry[1] - self._clock()
        if left <= 0:
            self._evict(image_id)
            return None
        self._images.move_to_end(image_id)
        return entry[0], left

    def _drop_expired(self) -> None:
        now = self._clock()
        for image_id in [i for i, (_, expiry) in self._images.items() if expiry <= now]:
            self._evict(image_id)

    def _evict(self, image_id: str) -> None:
        png, _ = self._images.pop(image_id)
        self.bytes -= len(png)


IMAGE_STORE = web.AppKey("image_store", ImageStore)

"""The image URL store's bounds (serving/image_store.py): bytes, time (an injected clock) and
least-recently-used eviction."""

from __future__ import annotations

import pytest

from serving.image_store import ImageStore


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_put_and_get_with_the_time_left() -> None:
    clock = Clock()
    store = ImageStore(100, 60.0, clock)
    image_id = store.put(b"a" * 10)
    assert len(image_id) >= 32 and image_id != store.put(b"a" * 10)  # unguessable, one per image
    clock.now += 15
    assert store.get(image_id) == (b"a" * 10, 45.0)
    assert store.get("unknown") is None


def test_expired_images_are_gone_and_free_their_bytes() -> None:
    clock = Clock()
    store = ImageStore(100, 60.0, clock)
    old = store.put(b"o" * 40)
    clock.now += 30
    young = store.put(b"y" * 40)
    clock.now += 30  # old's 60 s are up, young has 30 left
    assert store.get(old) is None and store.get(young) is not None
    assert store.bytes == 40 and len(store) == 1
    clock.now += 29.5
    store.put(b"n" * 10)
    clock.now += 1
    assert store.get(young) is None and store.bytes == 10  # expired when asked for


def test_bytes_bounded_by_evicting_the_least_recently_used() -> None:
    store = ImageStore(100, 60.0, Clock())
    first, second, third = (store.put(bytes([i]) * 30) for i in range(3))
    assert store.get(first) is not None  # first is now the most recently used
    fourth = store.put(b"4" * 30)  # 120 > 100: the least recently used (second) goes
    assert store.get(second) is None
    assert all(store.get(i) is not None for i in (first, third, fourth)) and store.bytes == 90
    big = store.put(b"b" * 100)  # as large as the store: everything else goes
    assert store.bytes == 100 and len(store) == 1 and store.get(big) is not None


def test_an_image_larger_than_the_store_is_refused() -> None:
    store = ImageStore(100, 60.0, Clock())
    kept = store.put(b"k" * 50)
    with pytest.raises(ValueError, match="larger than the store"):
        store.put(b"x" * 101)
    assert store.get(kept) is not None and store.bytes == 50

"""Finding tags in a growing text without ever emitting a piece that could still become one."""

from __future__ import annotations


def partial_tag_length(text: str, tag: str) -> int:
    """Length of the longest end of `text` that is a proper start of `tag` (0 when none).

    That many characters must be held back: the next delta may complete the tag.
    """
    for size in range(min(len(text), len(tag) - 1), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


def split_before_tag(pending: str, tag: str) -> tuple[str, str, str | None]:
    """Split unemitted text at the first `tag`, holding back what must wait.

    Returns `(emit, held, after)`:
    - tag found: `emit` is the text before it without its trailing whitespace, `held` that
      whitespace (the caller drops it or restores it), `after` the text after the tag;
    - not found: `emit` is what is safe to emit now, `held` the rest to keep pending (trailing
      whitespace, which is dropped if a tag follows, and a partial tag), `after` is None.
    """
    index = pending.find(tag)
    if index >= 0:
        before = pending[:index]
        body = before.rstrip()
        return body, before[len(body) :], pending[index + len(tag) :]
    safe = pending[: len(pending) - partial_tag_length(pending, tag)]
    body = safe.rstrip()
    return body, pending[len(body) :], None

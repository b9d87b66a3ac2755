"""A chat stream on the tiny model kept in flight while hostile requests are sent: what the
hostile tests use to show a refusal disturbs no one else."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tests.helpers.http import RawStream, user
from tests.helpers.processes import paused
from tests.helpers.server import Server
from tests.helpers.stats import engine
from tests.models import TINY_PROMPTS

STORY = "Tell me a story."


@contextlib.contextmanager
def chat_stream_paused(server: Server, model: str = "tiny") -> Iterator[None]:
    """Starts a streamed chat answer of STORY on `model` and pauses its engine worker for the
    block (so the stream is mid-answer throughout); after it, the stream must end with its exact
    answer."""
    stream = RawStream(server, {"model": model, "messages": user(STORY), "stream": True})
    stream.read_until(b'"content"')
    with paused(engine(server, model)["pid"]):
        yield
    stream.read_to_end()
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in stream.events() if e.get("choices"))
    assert text == TINY_PROMPTS[STORY]

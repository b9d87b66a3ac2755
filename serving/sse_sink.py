"""Write SSE packets straight from the graph's turn to the socket.

After the first packet, each later one would otherwise wake the request handler just to copy
bytes into the socket: one task switch per token step per request. The sink writes the HTTP/1.1
chunk itself, synchronously, while the socket keeps up; when it does not (a slow client) or is
gone, it declines, and from then on packets go through the handler's awaited writes (with
backpressure and the proper error when the client has left).

So the transport's buffer holds at most the high-water mark plus one packet from the sink, and
aiohttp's own limit (64 KiB) more from the handler before it waits for the client; what the run
produces meanwhile queues in the run, bounded by --max_unsent_bytes (serving.frontend.bound_unsent).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from graphs.runner import OutputPacket

HIGH_WATER_BYTES = 64 * 1024


class ChunkedSink:
    def __init__(
        self,
        transport: asyncio.Transport,
        encode: Callable[[OutputPacket], bytes],
        ends_answer: Callable[[OutputPacket], bool],
        high_water: int = HIGH_WATER_BYTES,
    ) -> None:
        """`encode`: a packet's bytes; `ends_answer`: whether it completes the answer."""
        self._transport = transport
        self._encode = encode
        self._ends_answer = ends_answer
        self._high_water = high_water
        self.answered = False  # the client has been sent the whole answer

    def __call__(self, out: OutputPacket) -> bool:
        transport = self._transport
        if transport.is_closing() or transport.get_write_buffer_size() > self._high_water:
            return False
        body = self._encode(out)
        transport.write(b"%x\r\n%b\r\n" % (len(body), body))  # one HTTP/1.1 chunk
        if self._ends_answer(out):
            self.answered = True
        return True

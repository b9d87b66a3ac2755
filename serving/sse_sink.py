"""Write SSE packets straight from the graph's turn to the socket.

After the first packet, each later one would otherwise wake the request handler just to copy
bytes into the socket: one task switch per token step per request. The sink writes the HTTP/1.1
chunk itself, synchronously, while the socket keeps up; when it does not (a slow client) or is
gone, it declines, and from then on packets go through the handler's awaited writes (with
backpressure and the proper error when the client has left).
"""

from __future__ import annotations

import asyncio

from calculators.packets import HttpResponsePayload
from graphs.runner import OutputPacket

HIGH_WATER_BYTES = 64 * 1024


class ChunkedSink:
    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def __call__(self, out: OutputPacket) -> bool:
        transport = self._transport
        if transport.is_closing() or transport.get_write_buffer_size() > HIGH_WATER_BYTES:
            return False
        payload: HttpResponsePayload = out.packet.value
        body = payload.body
        transport.write(b"%x\r\n%b\r\n" % (len(body), body))  # one HTTP/1.1 chunk
        return True

"""S2tCalculator: an OpenAI transcription or translation form in, the transcript out.

Registered under OVMS's name, with OVMS's tags and options, so OVMS's speech-to-text
graph.pbtxt serves unchanged (with or without its LOOPBACK back edge, which OVMS's C++ node
uses to stream; here the node streams by itself, and LOOPBACK carries nothing):

    node { calculator: "S2tCalculator"
           input_side_packet: "STT_NODE_RESOURCES:s2t_servable"
           input_stream: "HTTP_REQUEST_PAYLOAD:input" output_stream: "HTTP_RESPONSE_PAYLOAD:output"
           node_options { [type.googleapis.com/mediapipe.S2tCalculatorOptions] { models_path: "./" } } }

Outputs: `ResponseBody` (json, verbose_json), `TextAnswer` (text, srt, vtt), or one
`StreamEvent` per text piece then the done event (`stream: true`).
"""

from __future__ import annotations

import asyncio
import time

import numpy as np

from calculators.audio.decode import decode_audio
from calculators.audio.formats import StreamEvent, delta_event, done_event, render
from calculators.audio.options_type import declare_s2t_options
from calculators.audio.protocol import SpeechRequest, parse_request
from calculators.audio.resource import S2tOptions, SpeechResource, Transcript, create_speech_resource
from calculators.llm.telemetry import TELEMETRY, RequestTelemetry
from calculators.packets import HttpRequestPayload, ResponseBody
from graphs import Calculator, Contract, InputSet, default_registry

OUT = "HTTP_RESPONSE_PAYLOAD"
declare_s2t_options()


@default_registry.calculator("S2tCalculator")
class S2tCalculator(Calculator):
    contract = Contract.of(
        inputs=("HTTP_REQUEST_PAYLOAD", "LOOPBACK"),
        outputs=(OUT, "LOOPBACK"),
        side_packets=("STT_NODE_RESOURCES",),
        optional=("LOOPBACK",),
        options=S2tOptions,
        providers={"STT_NODE_RESOURCES": create_speech_resource},
    )

    async def process(self, inputs: InputSet) -> None:
        packet = inputs.get("HTTP_REQUEST_PAYLOAD")
        if packet is None:  # a LOOPBACK packet: nothing sends one here
            return
        payload: HttpRequestPayload = packet.value
        request = parse_request(payload.endpoint, payload.body)
        resource: SpeechResource = self.ctx.side_packets["STT_NODE_RESOURCES"]
        resource.check(request)
        started = time.perf_counter_ns()
        audio = await asyncio.to_thread(decode_audio, request.upload.data, request.upload.max_seconds)
        decoded = time.perf_counter_ns()
        self.ctx.record_span("decode audio", started, decoded, {"bytes": len(request.upload.data), "samples": len(audio)})
        if request.stream:
            transcript = await self._stream(resource, audio, request)
        else:
            transcript = await resource.transcribe(audio, request)
            answer = render(transcript, request)
            self.ctx.emit(OUT, ResponseBody(answer) if isinstance(answer, dict) else answer, inputs.timestamp)
        ended = time.perf_counter_ns()
        span = {"tokens": transcript.tokens, "audio_s": round(transcript.duration, 3), "engine_s": round(transcript.engine_seconds, 4)}
        self.ctx.record_span("generate", decoded, ended, span)
        # the server's metrics (ovserve_speech_to_text_seconds), when on: a method the LLM's sink protocol lacks
        telemetry: RequestTelemetry | None = self.ctx.request.get(TELEMETRY)
        observe = getattr(telemetry.sink, "speech_transcribed", None) if telemetry is not None else None
        if observe is not None:
            observe(resource.servable_name, transcript.engine_seconds)

    async def _stream(self, resource: SpeechResource, audio: np.ndarray, request: SpeechRequest) -> Transcript:
        """Each piece of text as a delta event as the engine gives it, then the done event. The
        pieces come from the engine's thread in order, before its result (call_soon_threadsafe
        keeps them in order); None marks the end."""
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str | None] = asyncio.Queue()
        generation = asyncio.ensure_future(resource.transcribe(audio, request, lambda p: loop.call_soon_threadsafe(pieces.put_nowait, p)))
        generation.add_done_callback(lambda _: pieces.put_nowait(None))
        first = True
        try:
            while (piece := await pieces.get()) is not None:
                if first:  # Whisper's text starts with a space; OpenAI's does not
                    piece = piece.lstrip()
                    first = not piece
                if piece:
                    self.ctx.emit(OUT, StreamEvent(delta_event(piece)))
            transcript = generation.result()  # the engine's error, if any
        finally:
            generation.cancel()  # (a no-op once done) the run was cancelled: stop the engine
        self.ctx.emit(OUT, StreamEvent(done_event(transcript), last=True))
        return transcript

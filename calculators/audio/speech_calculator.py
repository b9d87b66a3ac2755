"""T2sCalculator: an OpenAI create-speech body in, the audio out (wav or raw pcm).

Registered under OVMS's name, with OVMS's tags and options (`mediapipe.T2sCalculatorOptions`:
models_path, target_device, plugin_config, voices { name path }, speed_min, speed_max), so
OVMS's text-to-speech graph.pbtxt serves unchanged:

    node { name: "T2sExecutor" calculator: "T2sCalculator"
           input_side_packet: "TTS_NODE_RESOURCES:t2s_servable"
           input_stream: "HTTP_REQUEST_PAYLOAD:input" output_stream: "HTTP_RESPONSE_PAYLOAD:output"
           node_options { [type.googleapis.com/mediapipe.T2sCalculatorOptions] { models_path: "./" } } }

Output: one `SpeechAudio` (bytes and their media type).
"""

from __future__ import annotations

import asyncio
import time

from calculators.audio.speech_encode import SpeechAudio, encode_speech
from calculators.audio.speech_protocol import parse_speech_request
from calculators.audio.speech_resource import SpeechSynthesisResource, T2sOptions, create_speech_synthesis_resource
from calculators.llm.telemetry import TELEMETRY, RequestTelemetry
from calculators.packets import HttpRequestPayload
from graphs import Calculator, Contract, InputSet, default_registry
from graphs.options_proto import declare_message

OUT = "HTTP_RESPONSE_PAYLOAD"
T2S_OPTIONS_TYPE = declare_message("mediapipe.T2sCalculatorOptions", T2sOptions)


@default_registry.calculator("T2sCalculator")
class T2sCalculator(Calculator):
    contract = Contract.of(
        inputs=("HTTP_REQUEST_PAYLOAD",),
        outputs=(OUT,),
        side_packets=("TTS_NODE_RESOURCES",),
        options=T2sOptions,
        providers={"TTS_NODE_RESOURCES": create_speech_synthesis_resource},
    )

    async def process(self, inputs: InputSet) -> None:
        payload: HttpRequestPayload = inputs["HTTP_REQUEST_PAYLOAD"].value
        request = parse_speech_request(payload.endpoint, payload.body)
        resource: SpeechSynthesisResource = self.ctx.side_packets["TTS_NODE_RESOURCES"]
        resource.check(request)
        started = time.perf_counter_ns()
        speech = await resource.synthesize(request)
        generated = time.perf_counter_ns()
        audio: SpeechAudio = await asyncio.to_thread(encode_speech, speech.waveform, speech.sample_rate, request.response_format)
        ended = time.perf_counter_ns()
        seconds = len(speech.waveform) / speech.sample_rate if speech.sample_rate else 0.0
        span = {"chars": len(request.input), "voice": request.voice or "", "audio_s": round(seconds, 3)}
        span["engine_s"] = round(speech.engine_seconds, 4)
        self.ctx.record_span("generate speech", started, generated, span)
        self.ctx.record_span("encode audio", generated, ended, {"format": request.response_format, "bytes": len(audio.data)})
        self.ctx.emit(OUT, audio, inputs.timestamp)
        # the server's metrics (ovserve_text_to_speech_seconds), when on: a method the LLM's sink protocol lacks
        telemetry: RequestTelemetry | None = self.ctx.request.get(TELEMETRY)
        observe = getattr(telemetry.sink, "speech_generated", None) if telemetry is not None else None
        if observe is not None:
            observe(resource.servable_name, speech.engine_seconds)

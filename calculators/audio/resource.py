"""The speech-to-text side packet (`STT_NODE_RESOURCES`): one openvino-genai WhisperPipeline per
servable, shared by every run.

`WhisperPipeline.generate()` releases the GIL (measured on the toy Whisper, 100 s of audio:
a 330 ms generate left the event loop's 1 ms timer at most 3 ms late; with a Python streamer
callback or timestamps, at most ~60 ms once per call), so it runs in a thread, not a worker
process. The pipeline is not safe to call from two threads, and it does not batch: one
generation at a time per servable (an asyncio lock; later requests wait in turn). A streamer
callback is always installed: it forwards text pieces when streaming, and stops the engine at
its next token once the run is cancelled (the client went away).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from calculators.audio.decode import SAMPLE_RATE
from calculators.audio.protocol import SpeechRequest
from calculators.llm.resource import check_device
from calculators.ov_infer import plugin_properties
from graphs import Options, ResourceContext
from graphs.errors import InvalidRequestError, UnavailableError

OnText = Callable[[str], object] | None  # called in the engine's thread with each piece of text
WHISPER_FILES = ("openvino_encoder_model.xml", "openvino_decoder_model.xml", "openvino_tokenizer.xml", "openvino_detokenizer.xml")

log = logging.getLogger("ovserve.calculators.audio")


class S2tOptions(Options):
    """OVMS's S2tCalculatorOptions."""

    models_path: str
    target_device: str = "CPU"
    plugin_config: str = ""
    enable_word_timestamps: bool = False  # builds the pipeline for word timestamps (OVMS's option)


@dataclass(frozen=True, slots=True)
class Span:
    start: float
    end: float
    text: str


@dataclass(slots=True)
class Transcript:
    """What one generation gave."""

    text: str
    language: str
    duration: float  # seconds of audio
    segments: list[Span] = field(default_factory=list)
    words: list[Span] = field(default_factory=list)
    tokens: int = 0
    engine_seconds: float = 0.0  # generate() alone (not the wait for the servable's turn)


@dataclass
class SpeechResource:
    options: S2tOptions
    pipeline: Any  # openvino_genai.WhisperPipeline
    languages: frozenset[str]  # codes the model knows ("en"), from generation_config.json's lang_to_id
    multilingual: bool
    servable_name: str = ""  # the metrics' model label
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def check(self, request: SpeechRequest) -> None:
        """400s for what this model or servable cannot do, before the audio is decoded."""
        if request.language is not None and request.language not in self.languages:
            known = ", ".join(sorted(self.languages)) or "none"
            raise InvalidRequestError(f"language {request.language!r} is not one this model knows ({known})", param="language")
        if request.words and not self.options.enable_word_timestamps:
            raise InvalidRequestError(
                "word timestamps are off for this servable (its node option enable_word_timestamps)", param="timestamp_granularities[]"
            )
        if request.task == "translate" and not self.multilingual:
            raise InvalidRequestError("this model is English-only and cannot translate", param="model")

    def _config(self, request: SpeechRequest) -> dict[str, Any]:
        config: dict[str, Any] = {"task": request.task, "return_timestamps": request.segments or request.response_format in ("srt", "vtt")}
        if request.language is not None:
            config["language"] = f"<|{request.language}|>"
        if request.prompt:
            config["initial_prompt"] = request.prompt
        if request.words:
            config["word_timestamps"] = True
        if request.temperature > 0:
            config.update(do_sample=True, temperature=request.temperature)
        return config

    def _generate(self, audio: np.ndarray, config: dict[str, Any], on_text: OnText, stop: threading.Event) -> Transcript:
        def streamer(piece: str) -> bool:
            if on_text is not None and piece:
                on_text(piece)
            return stop.is_set()  # True: genai stops generating

        started = time.perf_counter()
        result = self.pipeline.generate(audio, streamer=streamer, **config)
        engine_seconds = time.perf_counter() - started
        chunks = result.chunks or []
        words = result.words or []
        metrics = result.perf_metrics
        return Transcript(
            text=result.texts[0] if result.texts else "",
            language=str(result.language or "").strip("<|>"),
            duration=len(audio) / SAMPLE_RATE,
            segments=[Span(float(c.start_ts), float(c.end_ts), c.text) for c in chunks],
            words=[Span(float(w.start_ts), float(w.end_ts), w.word) for w in words],
            tokens=int(metrics.get_num_generated_tokens()),
            engine_seconds=engine_seconds,
        )

    async def transcribe(self, audio: np.ndarray, request: SpeechRequest, on_text: OnText = None) -> Transcript:
        """One generation, in turn with the servable's others. `on_text` is called in the
        engine's thread with each piece of text; cancelling stops the engine at its next token."""
        config = self._config(request)
        stop = threading.Event()
        async with self.lock:
            future = asyncio.ensure_future(asyncio.to_thread(self._generate, audio, config, on_text, stop))
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                stop.set()  # and wait for the engine to stop, so the next request finds it free
                (done,) = await asyncio.gather(future, return_exceptions=True)
                if isinstance(done, Transcript):
                    log.info("servable %s: transcription cancelled, the engine stopped after %d tokens", self.servable_name, done.tokens)
                raise
            except RuntimeError as exc:  # genai refused the input (e.g. a prompt longer than the model takes)
                raise InvalidRequestError(f"the engine could not transcribe this audio: {str(exc).splitlines()[-1][:200]}") from None

    async def aclose(self) -> None:
        async with self.lock:
            self.pipeline = None


def _languages(model_dir: Path) -> tuple[frozenset[str], bool]:
    path = model_dir / "generation_config.json"
    config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    codes = frozenset(str(token).strip("<|>") for token in (config.get("lang_to_id") or {}))
    return codes, bool(config.get("is_multilingual", bool(codes)))


async def create_speech_resource(options: S2tOptions, ctx: ResourceContext) -> SpeechResource:
    import openvino_genai as ov_genai

    model_dir = (ctx.base_path / options.models_path).resolve()
    missing = [name for name in WHISPER_FILES if not (model_dir / name).is_file()]
    if missing:
        raise UnavailableError(f"not a Whisper model folder for openvino-genai: {model_dir} lacks {', '.join(missing)}")
    check_device(options.target_device)
    properties = plugin_properties(options.plugin_config)
    if options.enable_word_timestamps:
        properties["word_timestamps"] = True

    def load() -> SpeechResource:
        pipeline = ov_genai.WhisperPipeline(str(model_dir), options.target_device, **properties)
        languages, multilingual = _languages(model_dir)
        return SpeechResource(options, pipeline, languages, multilingual, ctx.servable_name)

    return await asyncio.to_thread(load)

"""The text-to-speech side packet (`TTS_NODE_RESOURCES`): one openvino-genai Text2SpeechPipeline
per servable and its voices, shared by every run.

Voices are speaker embeddings, as OVMS loads them: every `voices/<name>.bin` in the model folder
(raw float32, the pipeline's embedding size; a bad file leaves that folder out with a warning),
then each `voices { name path }` of the node's options (path relative to graph.pbtxt's folder;
a missing or wrong-sized file fails the load), which wins over a file of the same name.

`Text2SpeechPipeline.generate()` releases the GIL (measured on the toy SpeechT5: a 470 ms
generate left the event loop's 1 ms timer at most 6 ms late), so it runs in a thread. It is not
safe to call from two threads and does not batch different voices: one generation at a time per
servable (an asyncio lock). It takes no callback, so a cancelled run cannot stop it: the
generation finishes in its thread, holding the servable, and its audio is dropped. A generate()
that fails (an input longer than the model's positions) leaves the pipeline broken (on the toy,
every later call failed alike), so a fresh one is loaded before the lock is released.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from calculators.audio.speech_protocol import SynthesisRequest
from calculators.llm.resource import check_device
from calculators.ov_infer import plugin_properties
from graphs import Options, ResourceContext
from graphs.errors import InvalidRequestError, UnavailableError

log = logging.getLogger("ovserve.calculators.audio")
TTS_FILES = ("config.json",)  # what any model of genai's Text2SpeechPipeline has (SpeechT5, Kokoro)
VOICES_FOLDER = "voices"


class SpeakerEmbeddings(Options):
    """One voice of OVMS's T2sCalculatorOptions: a name and its speaker-embedding file."""

    name: str = Field(min_length=1)
    path: str = Field(min_length=1)


class T2sOptions(Options):
    """OVMS's T2sCalculatorOptions."""

    models_path: str
    target_device: str = "CPU"
    plugin_config: str = ""
    voices: list[SpeakerEmbeddings] = Field(default_factory=list)
    speed_min: float = 0.25  # OVMS's bounds on the request's speed (OpenAI's range)
    speed_max: float = 4.0


@dataclass(slots=True)
class Speech:
    """What one generation gave."""

    waveform: np.ndarray  # float32 samples, mono (a copy: genai reuses its tensor's memory)
    sample_rate: int
    engine_seconds: float  # generate() alone (not the wait for the servable's turn)


@dataclass
class SpeechSynthesisResource:
    options: T2sOptions
    pipeline: Any  # openvino_genai.Text2SpeechPipeline
    voices: dict[str, np.ndarray]  # name -> float32 speaker embedding of the pipeline's shape
    model_type: str  # config.json's ("speecht5"): SpeechT5 has no speed control
    servable_name: str = ""
    new_pipeline: Callable[[], Any] | None = None  # loads a fresh pipeline, after one failed
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def check(self, request: SynthesisRequest) -> None:
        """400s for what this servable cannot do, before waiting for its turn."""
        if request.voice is not None and request.voice not in self.voices:
            known = ", ".join(sorted(self.voices)) or "none (leave voice out for the model's own)"
            raise InvalidRequestError(f"voice {request.voice!r} is not one this servable has; known voices: {known}", param="voice")
        low, high = self.options.speed_min, self.options.speed_max
        if not low <= request.speed <= high:
            raise InvalidRequestError(f"speed must be between speed_min ({low:g}) and speed_max ({high:g})", param="speed")
        if self.model_type == "speecht5" and request.speed != 1.0:
            raise InvalidRequestError("speed cannot be changed on this model (SpeechT5): send 1.0 or leave it out", param="speed")

    def _generate(self, request: SynthesisRequest) -> Speech:
        import openvino as ov

        config: dict[str, Any] = {}
        if request.speed != 1.0:
            config["speed"] = request.speed
        if request.language is not None:
            config["language"] = request.language
        started = time.perf_counter()
        if request.voice is None:
            result = self.pipeline.generate(request.input, **config)
        else:
            result = self.pipeline.generate(request.input, ov.Tensor(self.voices[request.voice]), **config)
        waveform = np.array(result.speeches[0].data, dtype=np.float32).reshape(-1)
        return Speech(waveform, int(result.output_sample_rate), time.perf_counter() - started)

    async def synthesize(self, request: SynthesisRequest) -> Speech:
        """One generation, in turn with the servable's others."""
        async with self.lock:
            future = asyncio.ensure_future(asyncio.to_thread(self._generate, request))
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                await asyncio.gather(future, return_exceptions=True)  # the engine cannot be stopped: let it end
                raise
            except RuntimeError as exc:  # genai refused the input (e.g. longer than the model's positions)
                reason = str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else type(exc).__name__
                if self.new_pipeline is not None:
                    log.warning("servable %s: generate failed (%s); loading the pipeline afresh", self.servable_name, reason)
                    await self._reload()
                raise InvalidRequestError(f"the engine could not speak this input: {reason}", param="input") from None

    async def _reload(self) -> None:
        """A fresh pipeline, under the lock; a cancelled caller still waits for it."""
        new_pipeline = self.new_pipeline
        assert new_pipeline is not None

        def load() -> None:
            self.pipeline = new_pipeline()

        loading = asyncio.ensure_future(asyncio.to_thread(load))
        try:
            await asyncio.shield(loading)
        except asyncio.CancelledError:
            await asyncio.gather(loading, return_exceptions=True)
            raise

    async def aclose(self) -> None:
        async with self.lock:
            self.pipeline = None


def read_speaker_embedding(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """A raw float32 file of exactly the pipeline's embedding size (ValueError otherwise)."""
    data = path.read_bytes()
    wanted = math.prod(shape)
    if len(data) != 4 * wanted:
        raise ValueError(f"{path}: a speaker embedding holds {wanted} float32 values ({4 * wanted} bytes), not {len(data)} bytes")
    return np.frombuffer(data, dtype="<f4").astype(np.float32).reshape(shape)


def load_voices(model_dir: Path, base_path: Path, listed: list[SpeakerEmbeddings], shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    voices: dict[str, np.ndarray] = {}
    folder = model_dir / VOICES_FOLDER
    if folder.is_dir():
        try:
            for path in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == ".bin"):
                voices[path.stem] = read_speaker_embedding(path, shape)
        except (OSError, ValueError) as exc:
            log.warning("voices in %s left out: %s", folder, exc)
            voices.clear()
    for voice in listed:
        path = base_path / voice.path
        if not path.is_file():
            raise UnavailableError(f"voice {voice.name!r}: no speaker-embedding file {path}")
        try:
            voices[voice.name] = read_speaker_embedding(path, shape)
        except ValueError as exc:
            raise UnavailableError(f"voice {voice.name!r}: {exc}") from None
    return voices


def _model_type(model_dir: Path) -> str:
    try:
        return str(json.loads((model_dir / "config.json").read_text(encoding="utf-8")).get("model_type", ""))
    except (OSError, ValueError):
        return ""


async def create_speech_synthesis_resource(options: T2sOptions, ctx: ResourceContext) -> SpeechSynthesisResource:
    import openvino_genai as ov_genai

    if not options.speed_min <= options.speed_max:
        raise UnavailableError(f"speed_min ({options.speed_min:g}) must be at most speed_max ({options.speed_max:g})")
    model_dir = (ctx.base_path / options.models_path).resolve()
    missing = [name for name in TTS_FILES if not (model_dir / name).is_file()]
    if missing:
        raise UnavailableError(f"not a text-to-speech model folder for openvino-genai: {model_dir} lacks {', '.join(missing)}")
    check_device(options.target_device)
    properties = plugin_properties(options.plugin_config)

    def pipeline() -> Any:
        return ov_genai.Text2SpeechPipeline(str(model_dir), options.target_device, **properties)

    def load() -> SpeechSynthesisResource:
        first = pipeline()
        shape = tuple(int(d) for d in first.get_speaker_embedding_shape())
        voices = load_voices(model_dir, ctx.base_path, options.voices, shape)
        return SpeechSynthesisResource(options, first, voices, _model_type(model_dir), ctx.servable_name, new_pipeline=pipeline)

    return await asyncio.to_thread(load)

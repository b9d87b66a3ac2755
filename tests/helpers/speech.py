"""The text-to-speech end-to-end tests' pieces: voices (seeded random speaker embeddings, as
OVMS's raw float32 .bin files), servable graphs on the toy SpeechT5, and a model folder with a
`voices/` subfolder as OVMS's pull leaves it."""

from __future__ import annotations

import io
import json
from importlib import resources
from pathlib import Path

import numpy as np

from tests.models.tts import SPEAKER_DIM

VOICES = {"alloy": 1, "echo": 2}  # name -> seed; OpenAI's names, which the SDK's users send


def embedding(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, SPEAKER_DIM)).astype(np.float32)


def write_voices(folder: Path, voices: dict[str, int] = VOICES) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, seed in voices.items():
        paths[name] = folder / f"{name}.bin"
        paths[name].write_bytes(embedding(seed).astype("<f4").tobytes())
    return paths


def stock_graph() -> str:
    return resources.files("graphs.stock").joinpath("text_to_speech.pbtxt").read_text(encoding="utf-8")


def speech_graph(model_dir: Path, voices: dict[str, str] | None = None) -> str:
    """The stock graph (OVMS's pull graph, unchanged but for models_path) on `model_dir`, with
    `voices { name path }` entries (paths relative to the servable's folder) when given."""
    lines = "".join(f'\n      voices {{ name: "{name}" path: "{path}" }}' for name, path in (voices or {}).items())
    return stock_graph().replace('models_path: "./",', f"models_path: {json.dumps(str(model_dir))},{lines}")


def folder_with_voices(model_dir: Path, target: Path) -> Path:
    """The model's files linked into `target`, beside a `voices/` folder of VOICES."""
    target.mkdir(parents=True)
    for item in model_dir.iterdir():
        (target / item.name).symlink_to(item)
    write_voices(target / "voices")
    return target


def read_wav(data: bytes) -> tuple[np.ndarray, int, str]:
    import soundfile

    with soundfile.SoundFile(io.BytesIO(data)) as wav:
        return wav.read(dtype="int16"), wav.samplerate, wav.subtype

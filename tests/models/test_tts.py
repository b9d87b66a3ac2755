"""The toy SpeechT5 (tests/models/tts.py): its tokenizer, and what openvino-genai's
Text2SpeechPipeline does with it (each fact of tts.py's docstring)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov
import openvino_genai
import pytest

from tests.models import build_tiny_tts, tiny_tts_recipe
from tests.models.__main__ import BUILDERS
from tests.models.common import recipe_hash
from tests.models.tts import SAMPLE_RATE, SPEAKER_DIM, TTS_FILES, build_tokenizer

SAMPLES_PER_STEP = 2 * 256  # reduction factor × HiFi-GAN upsampling


def speaker(seed: int, shape: tuple[int, ...] = (1, SPEAKER_DIM)) -> ov.Tensor:
    return ov.Tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def expected_samples(text: str, maxlenratio: float = 20.0) -> int:
    tokens = len(build_tokenizer()(text).input_ids)
    return int(tokens * maxlenratio / 2) * SAMPLES_PER_STEP


# --------------------------------------------------------------------------- data (fast)


def test_registered_and_recipe_is_stable() -> None:
    assert BUILDERS["tiny-tts"] is build_tiny_tts
    assert recipe_hash(tiny_tts_recipe()) == recipe_hash(tiny_tts_recipe())


def test_tokenizer_is_characters_then_eos() -> None:
    tok = build_tokenizer()
    ids = tok("Hi!").input_ids
    assert tok.convert_ids_to_tokens(ids) == ["h", "i", "!", "</s>"]
    assert tok.convert_ids_to_tokens(tok("é").input_ids) == ["<unk>", "</s>"]


# --------------------------------------------------------------------------- openvino-genai (e2e)


@pytest.fixture(scope="module")
def pipe(tiny_tts_dir: Path) -> openvino_genai.Text2SpeechPipeline:
    return openvino_genai.Text2SpeechPipeline(str(tiny_tts_dir), "CPU")


def test_folder_has_what_genai_reads(tiny_tts_dir: Path) -> None:
    for name in TTS_FILES:
        assert (tiny_tts_dir / name).is_file(), name


def test_waveform_rate_length_and_determinism(pipe: openvino_genai.Text2SpeechPipeline) -> None:
    result = pipe.generate("hello world", speaker(0))
    assert result.output_sample_rate == SAMPLE_RATE and len(result.speeches) == 1
    speech = result.speeches[0]
    assert speech.element_type == ov.Type.f32 and list(speech.shape) == [1, expected_samples("hello world")] == [1, 61440]
    first = np.array(speech.data)  # a copy: the next generate overwrites the tensor's memory
    assert np.isfinite(first).all() and np.abs(first).max() > 1e-3  # audible once written as 16-bit PCM
    assert np.array_equal(first, np.array(pipe.generate("hello world", speaker(0)).speeches[0].data))
    assert not np.array_equal(first, np.array(pipe.generate("hello world", speaker(1)).speeches[0].data))
    assert list(pipe.generate("hello world").speeches[0].shape) == [1, 61440]  # genai's default voice


def test_length_controls_batches_and_speed(pipe: openvino_genai.Text2SpeechPipeline) -> None:
    assert list(pipe.generate("hello world", speaker(0), maxlenratio=2.0).speeches[0].shape) == [1, expected_samples("hello world", 2.0)]
    assert list(pipe.generate("", speaker(0)).speeches[0].shape) == [1, expected_samples("")]
    longest = expected_samples("a longer sentence here")
    assert [list(s.shape) for s in pipe.generate(["hi", "a longer sentence here"], speaker(0)).speeches] == [[1, longest]] * 2
    assert list(pipe.generate("hello world", speaker(0), speed=1.5).speeches[0].shape) == [1, 61440]  # ignored
    assert list(pipe.get_speaker_embedding_shape()) == [1, SPEAKER_DIM]


@pytest.mark.parametrize("shape", [(1, 256), (SPEAKER_DIM,)])
def test_wrong_speaker_embedding_shapes_raise(tiny_tts_dir: Path, shape: tuple[int, ...]) -> None:
    with pytest.raises(RuntimeError, match="incompatible"):
        openvino_genai.Text2SpeechPipeline(str(tiny_tts_dir), "CPU").generate("hi", speaker(0, shape))

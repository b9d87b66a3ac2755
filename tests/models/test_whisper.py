"""The toy Whisper (tests/models/whisper.py): its audio, its tokenizer layout, and what
openvino-genai's WhisperPipeline does with it (each fact of whisper.py's docstring)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import openvino_genai
import pytest

from tests.models import WHISPER_CASES, build_tiny_whisper, tiny_whisper_recipe
from tests.models.__main__ import BUILDERS
from tests.models.common import recipe_hash
from tests.models.whisper import WHISPER_FILES, build_tokenizer, generation_config
from tests.models.whisper_data import NO_TIMESTAMPS, SAMPLE_RATE, SPECIAL_TOKENS, TIMESTAMPS, WORDS, synthesize

# --------------------------------------------------------------------------- data (fast)


def test_registered_and_recipe_is_stable() -> None:
    assert BUILDERS["tiny-whisper"] is build_tiny_whisper
    assert recipe_hash(tiny_whisper_recipe()) == recipe_hash(tiny_whisper_recipe())


def test_audio_is_seeded_float32_within_the_window() -> None:
    for case in WHISPER_CASES:
        audio = case.audio()
        assert audio.dtype == np.float32 and audio.ndim == 1
        assert len(audio) <= 2 * SAMPLE_RATE
        assert np.array_equal(audio, synthesize(case.words, case.seed))
    assert not np.array_equal(synthesize(("one",), 1), synthesize(("one",), 2))


def test_tokenizer_puts_the_timestamps_last_after_notimestamps() -> None:
    tok = build_tokenizer(tiny_whisper_recipe()["tokenizer"])
    no_ts = tok.convert_tokens_to_ids(NO_TIMESTAMPS)
    assert [tok.convert_tokens_to_ids(t) for t in TIMESTAMPS] == list(range(no_ts + 1, len(tok)))
    assert [tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == list(range(no_ts - len(SPECIAL_TOKENS) + 1, no_ts + 1))
    assert all(len(tok.encode(" " + w, add_special_tokens=False)) == 1 for w in WORDS)
    config = generation_config(tok, tiny_whisper_recipe())
    assert config["no_timestamps_token_id"] == no_ts and set(config["lang_to_id"]) == {"<|en|>", "<|fr|>"}


# --------------------------------------------------------------------------- openvino-genai (e2e)


@pytest.fixture(scope="module")
def pipe(tiny_whisper_dir: Path) -> openvino_genai.WhisperPipeline:
    return openvino_genai.WhisperPipeline(str(tiny_whisper_dir), "CPU")


def test_folder_has_what_genai_reads(tiny_whisper_dir: Path) -> None:
    for name in WHISPER_FILES:
        assert (tiny_whisper_dir / name).is_file(), name
    pre = json.loads((tiny_whisper_dir / "preprocessor_config.json").read_text())
    assert (pre["chunk_length"], pre["nb_max_frames"], pre["sampling_rate"]) == (2, 100, 16000)


def test_transcripts_and_translations_are_exact(pipe: openvino_genai.WhisperPipeline) -> None:
    for case in WHISPER_CASES:
        result = pipe.generate(case.audio().tolist())
        assert result.texts == [case.text] and result.language == "en"  # language detected
        assert pipe.generate(case.audio(), language="<|en|>", task="translate").texts == [case.translation]


def test_segment_timestamps(pipe: openvino_genai.WhisperPipeline) -> None:
    for case in WHISPER_CASES:
        result = pipe.generate(case.audio().tolist(), return_timestamps=True)
        assert [(c.start_ts, round(c.end_ts, 2), c.text) for c in result.chunks] == [(0.0, case.end_seconds, case.text)]
    assert pipe.generate(WHISPER_CASES[0].audio().tolist()).chunks is None


def test_word_timestamps_need_the_pipeline_property(tiny_whisper_dir: Path, pipe: openvino_genai.WhisperPipeline) -> None:
    case = WHISPER_CASES[0]
    with pytest.raises(RuntimeError, match="not decomposed"):
        pipe.generate(case.audio().tolist(), word_timestamps=True)
    words = openvino_genai.WhisperPipeline(str(tiny_whisper_dir), "CPU", word_timestamps=True)
    result = words.generate(case.audio().tolist(), word_timestamps=True)
    assert [w.word for w in result.words] == [" " + w for w in case.words]
    starts = [w.start_ts for w in result.words]
    assert starts == sorted(starts) and all(w.end_ts >= w.start_ts for w in result.words)


def test_streamer_gets_the_words(pipe: openvino_genai.WhisperPipeline) -> None:
    case = WHISPER_CASES[0]
    pieces: list[str] = []

    def streamer(text: str) -> bool:
        pieces.append(text)
        return False  # go on

    result = pipe.generate(case.audio().tolist(), streamer=streamer)
    assert "".join(pieces) == case.text == result.texts[0]


def test_refusals(pipe: openvino_genai.WhisperPipeline) -> None:
    audio = WHISPER_CASES[0].audio().tolist()
    with pytest.raises(RuntimeError, match="raw_speech too short"):
        pipe.generate([])
    with pytest.raises(RuntimeError, match="language"):
        pipe.generate(audio, language="<|de|>")
    assert pipe.generate(audio, language="en").texts == pipe.generate(audio, language="<|en|>").texts  # code or token

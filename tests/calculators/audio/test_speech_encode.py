"""The waveform as wav and pcm bytes (soundfile), and the speaker-embedding files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile

from calculators.audio.speech_encode import encode_speech
from calculators.audio.speech_resource import SpeakerEmbeddings, load_voices, read_speaker_embedding
from graphs.errors import UnavailableError

WAVE = np.array([0.0, 0.5, -0.5, 1.5, -2.0], dtype=np.float32)


def test_wav_is_16_bit_pcm_and_pcm_its_samples() -> None:
    wav = encode_speech(WAVE, 16000, "wav")
    assert wav.media_type == "audio/wav" and wav.samples == 5
    samples, rate = soundfile.read(io.BytesIO(wav.data), dtype="int16")
    assert rate == 16000 and soundfile.info(io.BytesIO(wav.data)).subtype == "PCM_16"
    assert samples.tolist()[:3] == [0, 16384, -16384] and samples[3] == 32767 and samples[4] == -32768  # clipped
    pcm = encode_speech(WAVE, 16000, "pcm")
    assert pcm.media_type == "audio/pcm" and np.array_equal(np.frombuffer(pcm.data, "<i2"), samples)


def test_flac_is_lossless_and_mp3_opus_decode_at_the_models_rate() -> None:
    tone = (0.5 * np.sin(np.arange(16000) / 8)).astype(np.float32)  # 1 s at 16 kHz
    wav = soundfile.read(io.BytesIO(encode_speech(tone, 16000, "wav").data), dtype="int16")[0]
    flac = encode_speech(tone, 16000, "flac")
    assert flac.media_type == "audio/flac" and flac.data[:4] == b"fLaC"
    assert np.array_equal(soundfile.read(io.BytesIO(flac.data), dtype="int16")[0], wav)
    for name, media_type, magic in (("mp3", "audio/mpeg", b"\xff"), ("opus", "audio/ogg", b"OggS")):
        encoded = encode_speech(tone, 16000, name)
        assert encoded.media_type == media_type and encoded.data.startswith(magic), name
        with soundfile.SoundFile(io.BytesIO(encoded.data)) as decoded:
            assert decoded.samplerate == 16000 and decoded.channels == 1, name
            lossy = decoded.read(dtype="float32")
        assert abs(len(lossy) - len(tone)) < 2048, name  # codec padding at most
        assert 0.8 < np.sqrt(np.mean(lossy**2)) / np.sqrt(np.mean(tone**2)) < 1.2, name  # the tone, not silence


def test_voices_from_the_folder_and_the_options(tmp_path: Path) -> None:
    (tmp_path / "model" / "voices").mkdir(parents=True)
    (tmp_path / "model" / "voices" / "a.bin").write_bytes(np.ones(4, "<f4").tobytes())
    (tmp_path / "model" / "voices" / "notes.txt").write_text("ignored")
    (tmp_path / "b.bin").write_bytes(np.full(4, 2, "<f4").tobytes())
    voices = load_voices(tmp_path / "model", tmp_path, [SpeakerEmbeddings(name="a", path="b.bin")], (1, 4))
    assert list(voices) == ["a"] and voices["a"].tolist() == [[2.0] * 4]  # the option wins
    with pytest.raises(UnavailableError, match="no speaker-embedding file"):
        load_voices(tmp_path / "model", tmp_path, [SpeakerEmbeddings(name="c", path="missing.bin")], (1, 4))
    with pytest.raises(ValueError, match="holds 8 float32"):
        read_speaker_embedding(tmp_path / "b.bin", (1, 8))
    (tmp_path / "model" / "voices" / "bad.bin").write_bytes(b"123")
    assert load_voices(tmp_path / "model", tmp_path, [], (1, 4)) == {}  # a bad file leaves the folder out, as OVMS

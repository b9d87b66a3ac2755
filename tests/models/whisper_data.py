"""The tiny Whisper's TOY speech: every "word" is a pure tone of its own pitch, synthesized with
numpy at 16 kHz. Nothing here is real speech; the model trained on it checks plumbing (audio in,
exact words out, timestamps, tasks), not recognition.

An utterance of 1 to 4 words starts at 0 s; each word is a :data:`WORD_SECONDS` tone followed by
:data:`GAP_SECONDS` of silence (both multiples of the time precision), so it ends at ``n * (WORD + GAP) - GAP`` seconds. The toy
"translation" task answers with :data:`TRANSLATIONS` (French number words).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Any

SAMPLE_RATE = 16000
#: The model's audio window (genai's ``chunk_length``; real Whisper has 30 s).
CHUNK_SECONDS = 2
WORD_SECONDS = 0.28
GAP_SECONDS = 0.12
#: word -> tone frequency (Hz)
WORDS: dict[str, float] = {"one": 440.0, "two": 660.0, "three": 990.0, "four": 1480.0, "five": 2220.0}
TRANSLATIONS: dict[str, str] = {"one": "un", "two": "deux", "three": "trois", "four": "quatre", "five": "cinq"}
MAX_WORDS = 4

# Whisper's special tokens, in Whisper's order, after the text vocabulary; the timestamps last.
ENDOFTEXT = "<|endoftext|>"
SOT = "<|startoftranscript|>"
LANGUAGES = ("<|en|>", "<|fr|>")
TRANSLATE = "<|translate|>"
TRANSCRIBE = "<|transcribe|>"
SOT_LM = "<|startoflm|>"
SOT_PREV = "<|startofprev|>"
NO_SPEECH = "<|nospeech|>"
NO_TIMESTAMPS = "<|notimestamps|>"
SPECIAL_TOKENS = (ENDOFTEXT, SOT, *LANGUAGES, TRANSLATE, TRANSCRIBE, SOT_LM, SOT_PREV, NO_SPEECH, NO_TIMESTAMPS)
#: 20 ms mel frames (real Whisper: 10 ms), so the encoder sees 50 positions for 2 s; genai's time
#: precision is chunk_length / max_source_positions: 0.04 s (real Whisper: 0.02 s).
HOP_LENGTH = 320
TIME_PRECISION = 0.04
TIMESTAMPS = tuple(f"<|{i * TIME_PRECISION:.2f}|>" for i in range(round(CHUNK_SECONDS / TIME_PRECISION) + 1))


@dataclass(frozen=True)
class WhisperCase:
    """One utterance: its words, and the seed of its rendering (amplitude, jitter, noise)."""

    words: tuple[str, ...]
    seed: int

    @property
    def text(self) -> str:
        """What genai returns for it (Whisper's leading space included)."""
        return "".join(" " + w for w in self.words)

    @property
    def translation(self) -> str:
        return "".join(" " + TRANSLATIONS[w] for w in self.words)

    @property
    def end_seconds(self) -> float:
        return round(len(self.words) * (WORD_SECONDS + GAP_SECONDS) - GAP_SECONDS, 2)

    def audio(self) -> Any:
        return synthesize(self.words, self.seed)


#: The cases tests assert on (rendered with seeds never used in training).
WHISPER_CASES = (
    WhisperCase(("one", "two", "three"), 101),
    WhisperCase(("five",), 102),
    WhisperCase(("four", "two"), 103),
    WhisperCase(("three", "five", "one", "four"), 104),
)


def synthesize(words: tuple[str, ...], seed: int) -> Any:
    """float32 mono audio at 16 kHz: each word's tone (random amplitude 0.3-0.8 and pitch ±2 %,
    10 ms fades) then a gap; faint noise throughout; length ``CHUNK_SECONDS`` at most."""
    import numpy as np

    rng = np.random.default_rng(seed)
    word_n, gap_n = round(WORD_SECONDS * SAMPLE_RATE), round(GAP_SECONDS * SAMPLE_RATE)
    t = np.arange(word_n) / SAMPLE_RATE
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)
    pieces = []
    for i, word in enumerate(words):
        freq = WORDS[word] * rng.uniform(0.98, 1.02)
        pieces.append(rng.uniform(0.3, 0.8) * fade * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi)))
        if i < len(words) - 1:
            pieces.append(np.zeros(gap_n))
    audio = np.concatenate(pieces + [np.zeros(gap_n)])
    audio += rng.normal(0.0, 0.003, audio.shape)
    return audio.astype(np.float32)


def training_utterances(max_words: int, four_word_samples: int, seed: int) -> list[tuple[str, ...]]:
    """Every sequence of 1..3 words, and a seeded sample of longer ones."""
    import numpy as np

    names = list(WORDS)
    utterances = [seq for n in range(1, min(3, max_words) + 1) for seq in product(names, repeat=n)]
    rng = np.random.default_rng(seed)
    for _ in range(four_word_samples if max_words >= 4 else 0):
        utterances.append(tuple(names[i] for i in rng.integers(0, len(names), size=4)))
    return utterances

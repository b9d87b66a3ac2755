"""The tiny Whisper: a TOY speech-to-text model (transformers ``WhisperForConditionalGeneration``,
2+2 layers of width 64, a 2 s window) trained in about a minute to transcribe the pure-tone "words"
of :mod:`tests.models.whisper_data`, exported with optimum-intel
(``automatic-speech-recognition-with-past``) so ``openvino_genai.WhisperPipeline`` gives every
:data:`WHISPER_CASES` transcript exactly. It checks plumbing, not recognition.

What openvino-genai 2026.4 needs and does (checked by test_whisper.py):

* Files: ``openvino_encoder_model.xml``, ``openvino_decoder_model.xml`` (stateful), the tokenizer
  IRs, ``generation_config.json`` (Whisper's ids: ``decoder_start_token_id``, ``no_timestamps_token_id``
  (timestamps are every id after it), ``is_multilingual`` + ``lang_to_id`` + ``task_to_id``,
  ``alignment_heads`` for word timestamps), ``preprocessor_config.json`` (``chunk_length``,
  ``n_samples``, ``nb_max_frames``: the window need not be 30 s) and ``config.json``
  (``max_source_positions``: time precision = chunk_length / max_source_positions).
* ``generate(raw_speech, **config)``: 16 kHz mono float samples (a list or a float32 numpy array);
  genai pads to the window before the log-mel as transformers' feature extractor does (training
  uses the same features). Fewer than ``n_fft / 2`` samples (empty too) raise RuntimeError. Audio
  longer than the window is cut into windows and decoded with timestamps (the toy is not trained
  for that: its text there is garbage).
* Returns ``WhisperDecodedResults``: ``texts`` (one, with Whisper's leading space), ``scores``,
  ``language`` ("en", detected when not given), ``chunks`` (``return_timestamps=True``: segments
  with ``start_ts``/``end_ts`` in seconds and ``text``; None otherwise), ``words`` (word timestamps),
  ``perf_metrics``.
* ``task="translate"|"transcribe"`` (the toy "translates" into French number words);
  ``language="<|en|>"`` or ``"en"`` (unknown: RuntimeError; ``<|fr|>`` is in ``lang_to_id`` but the
  toy only ever saw ``<|en|>``); ``initial_prompt`` / ``hotwords`` go in after ``<|startofprev|>`` (the toy was not trained on them:
  its answer changes); ``do_sample``/``temperature``/``rng_seed`` are accepted.
* Word timestamps need the pipeline built with ``WhisperPipeline(folder, "CPU", word_timestamps=True)``
  (genai then decomposes the cross attention) AND ``generate(..., word_timestamps=True)``; on a
  pipeline built without it generate raises RuntimeError. Each word: ``word``, ``start_ts``,
  ``end_ts``, ``token_ids`` (the toy's times come from untrained alignment heads: ordered, not accurate).
* Export logs "openvino.frontend.pytorch.utils ERROR Failed to build model wrapper." and then
  succeeds (optimum-intel's first tracing attempt; harmless).
* Streaming: ``streamer=callable(str) -> bool`` gets text pieces (a word each here); with
  ``return_timestamps=True`` it gets each segment's text at once.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from tests.models.common import RECIPE_VERSION, cached_build, default_cache_root, deterministic_torch, package_versions, quiet_build
from tests.models.whisper_data import (
    CHUNK_SECONDS,
    ENDOFTEXT,
    HOP_LENGTH,
    LANGUAGES,
    NO_TIMESTAMPS,
    SAMPLE_RATE,
    SOT,
    SOT_PREV,
    SPECIAL_TOKENS,
    TIME_PRECISION,
    TIMESTAMPS,
    TRANSCRIBE,
    TRANSLATE,
    TRANSLATIONS,
    WHISPER_CASES,
    WORDS,
    WhisperCase,
    synthesize,
    training_utterances,
)

logger = logging.getLogger("tests.models.whisper")

#: Bump when whisper_data.py renders different audio for the same recipe.
WHISPER_DATA_VERSION = 1
#: The files WhisperPipeline reads.
WHISPER_FILES = (
    "openvino_encoder_model.xml",
    "openvino_decoder_model.xml",
    "openvino_tokenizer.xml",
    "openvino_detokenizer.xml",
    "config.json",
    "generation_config.json",
    "preprocessor_config.json",
)


def tiny_whisper_recipe() -> dict[str, Any]:
    """Everything that decides what :func:`build_tiny_whisper` produces."""
    return {
        "recipe_version": RECIPE_VERSION,
        "data_version": WHISPER_DATA_VERSION,
        "kind": "tiny-whisper",
        "model": {
            "d_model": 64,
            "encoder_layers": 2,
            "decoder_layers": 2,
            "encoder_attention_heads": 4,
            "decoder_attention_heads": 4,
            "encoder_ffn_dim": 128,
            "decoder_ffn_dim": 128,
            "num_mel_bins": 80,
            "max_source_positions": round(CHUNK_SECONDS / TIME_PRECISION),
            "max_target_positions": 32,
        },
        "audio": {"sampling_rate": SAMPLE_RATE, "chunk_length": CHUNK_SECONDS, "hop_length": HOP_LENGTH, "n_fft": 400},
        "words": WORDS,
        "translations": TRANSLATIONS,
        "tokenizer": {"vocab_size": 300, "special_tokens": SPECIAL_TOKENS, "timestamps": len(TIMESTAMPS)},
        "data": {"seed": 5, "renderings": 2, "max_words": 4, "four_word_samples": 40},
        "training": {"seed": 1234, "steps": 150, "batch": 64, "lr": 5e-3},
        "cases": [[c.words, c.seed] for c in WHISPER_CASES],
        "weight_format": "fp32",
        "versions": package_versions(),
    }


def build_tiny_whisper_hf(cache_root: Path | None = None) -> Path:
    """The toy's trained Hugging Face folder (weights, tokenizer, generation/preprocessor configs)
    that :func:`build_tiny_whisper` exports: a ``--source_model`` for the pull tests. Cached apart
    (``tiny-whisper-hf-<hash>``, same recipe) so the IR folder stays what genai reads and nothing more."""
    recipe = tiny_whisper_recipe()
    return cached_build(cache_root or default_cache_root(), "tiny-whisper-hf", recipe, lambda out: _build_hf(out, recipe))


def build_tiny_whisper(cache_root: Path | None = None) -> Path:
    """The tiny toy Whisper; WhisperPipeline transcribes every WHISPER_CASES utterance exactly."""
    recipe = tiny_whisper_recipe()
    root = cache_root or default_cache_root()
    return cached_build(root, "tiny-whisper", recipe, lambda out: _build(out, build_tiny_whisper_hf(root)))


# --------------------------------------------------------------------------- tokenizer, config


def build_tokenizer(spec: dict[str, Any]) -> Any:
    """Byte-level BPE over the toy words (each word with its leading space one token), then
    Whisper's special tokens and the timestamps appended in Whisper's order (timestamps last:
    genai takes every id above ``<|notimestamps|>`` for one)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec["vocab_size"], min_frequency=1, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    words = [*WORDS, *TRANSLATIONS.values()]
    tok.train_from_iterator([" ".join(words)] * 4 + ["".join(" " + w for w in words)] * 4, trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in spec["special_tokens"]])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TIMESTAMPS])
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=ENDOFTEXT, eos_token=ENDOFTEXT, pad_token=ENDOFTEXT, unk_token=ENDOFTEXT, model_max_length=448
    )
    for word in words:
        if len(hf_tok.encode(" " + word, add_special_tokens=False)) != 1:
            raise RuntimeError(f"tiny Whisper tokenizer: {word!r} is not one token")
    return hf_tok


def token_ids(hf_tok: Any) -> dict[str, int]:
    return {t: hf_tok.convert_tokens_to_ids(t) for t in (*SPECIAL_TOKENS, TIMESTAMPS[0])}


def generation_config(hf_tok: Any, recipe: dict[str, Any]) -> dict[str, Any]:
    """generation_config.json as genai's WhisperGenerationConfig reads it."""
    ids = token_ids(hf_tok)
    eot = ids[ENDOFTEXT]
    heads = recipe["model"]["decoder_attention_heads"]
    last = recipe["model"]["decoder_layers"] - 1
    return {
        "bos_token_id": eot,
        "eos_token_id": eot,
        "pad_token_id": eot,
        "decoder_start_token_id": ids[SOT],
        "no_timestamps_token_id": ids[NO_TIMESTAMPS],
        "prev_sot_token_id": ids[SOT_PREV],
        "is_multilingual": True,
        "lang_to_id": {lang: ids[lang] for lang in LANGUAGES},
        "task_to_id": {"transcribe": ids[TRANSCRIBE], "translate": ids[TRANSLATE]},
        "begin_suppress_tokens": [eot],
        "suppress_tokens": [],
        "max_initial_timestamp_index": 50,
        "max_length": recipe["model"]["max_target_positions"],
        "alignment_heads": [[last, h] for h in range(heads)],
        "return_timestamps": False,
    }


def preprocessor_config(recipe: dict[str, Any]) -> dict[str, Any]:
    audio = recipe["audio"]
    n_samples = audio["chunk_length"] * audio["sampling_rate"]
    return {
        "feature_extractor_type": "WhisperFeatureExtractor",
        "processor_class": "WhisperProcessor",
        "feature_size": recipe["model"]["num_mel_bins"],
        "sampling_rate": audio["sampling_rate"],
        "hop_length": audio["hop_length"],
        "n_fft": audio["n_fft"],
        "chunk_length": audio["chunk_length"],
        "n_samples": n_samples,
        "nb_max_frames": n_samples // audio["hop_length"],
        "padding_side": "right",
        "padding_value": 0.0,
        "return_attention_mask": False,
    }


def feature_extractor(recipe: dict[str, Any]) -> Any:
    from transformers import WhisperFeatureExtractor

    audio = recipe["audio"]
    return WhisperFeatureExtractor(
        feature_size=recipe["model"]["num_mel_bins"],
        sampling_rate=audio["sampling_rate"],
        hop_length=audio["hop_length"],
        chunk_length=audio["chunk_length"],
        n_fft=audio["n_fft"],
    )


def whisper_config(recipe: dict[str, Any], hf_tok: Any) -> Any:
    from transformers import WhisperConfig

    ids = token_ids(hf_tok)
    kwargs: dict[str, Any] = {
        **recipe["model"],
        "vocab_size": len(hf_tok),
        "decoder_start_token_id": ids[SOT],
        "bos_token_id": ids[ENDOFTEXT],
        "eos_token_id": ids[ENDOFTEXT],
        "pad_token_id": ids[ENDOFTEXT],
        "begin_suppress_tokens": None,
        "suppress_tokens": None,
    }
    config = WhisperConfig(**kwargs)
    config._attn_implementation = "eager"  # faster than SDPA's backward at this size (training only)
    return config


# --------------------------------------------------------------------------- training


def timestamp_token(hf_tok: Any, seconds: float) -> int:
    return int(hf_tok.convert_tokens_to_ids(TIMESTAMPS[0])) + round(seconds / TIME_PRECISION)


def target_sequences(case: WhisperCase, hf_tok: Any) -> list[list[int]]:
    """The four decoder sequences of one utterance: transcribe/translate, without/with timestamps
    (one segment from 0 s to the end of the last tone)."""
    ids = token_ids(hf_tok)
    out = []
    for task, text in ((TRANSCRIBE, case.text), (TRANSLATE, case.translation)):
        words = hf_tok.encode(text, add_special_tokens=False)
        head = [ids[SOT], ids[LANGUAGES[0]], ids[task]]
        out.append([*head, ids[NO_TIMESTAMPS], *words, ids[ENDOFTEXT]])
        out.append([*head, timestamp_token(hf_tok, 0.0), *words, timestamp_token(hf_tok, case.end_seconds), ids[ENDOFTEXT]])
    return out


def train_whisper(model: Any, features: Any, sequences: list[list[list[int]]], spec: dict[str, Any], pad: int) -> float:
    """Seeded AdamW on minibatches of utterances, each with its four sequences; no loss on the
    task token (the caller chooses it)."""
    import torch

    torch.manual_seed(spec["seed"])
    generator = torch.Generator().manual_seed(spec["seed"])
    width = max(len(s) for seqs in sequences for s in seqs)
    padded = torch.full((len(sequences), 4, width), pad, dtype=torch.long)
    for i, seqs in enumerate(sequences):
        for j, seq in enumerate(seqs):
            padded[i, j, : len(seq)] = torch.tensor(seq)
    labels = padded[:, :, 1:].clone()
    labels[:, :, 1] = -100  # the task token
    lengths = torch.tensor([[len(s) for s in seqs] for seqs in sequences])
    positions = torch.arange(width - 1)
    labels[positions.expand_as(labels) >= (lengths - 1).unsqueeze(-1)] = -100
    opt = torch.optim.AdamW(model.parameters(), lr=spec["lr"], weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=spec["lr"], total_steps=spec["steps"], pct_start=0.1)
    model.train()
    loss = torch.tensor(0.0)
    with deterministic_torch():
        for _ in range(spec["steps"]):
            batch = torch.randperm(len(sequences), generator=generator)[: spec["batch"]]
            encoded = model.model.encoder(features[batch]).last_hidden_state
            n = len(batch)
            hidden = encoded.repeat_interleave(4, dim=0)
            decoder_in = padded[batch, :, :-1].reshape(n * 4, -1)
            out = model(encoder_outputs=(hidden,), decoder_input_ids=decoder_in)
            loss = torch.nn.functional.cross_entropy(
                out.logits.reshape(-1, out.logits.shape[-1]), labels[batch].reshape(-1), ignore_index=-100
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    return float(loss.detach())


def _build_hf(out: Path, recipe: dict[str, Any]) -> None:
    import numpy as np
    import torch

    with quiet_build():
        from transformers import WhisperForConditionalGeneration

        t0 = time.monotonic()
        hf_tok = build_tokenizer(recipe["tokenizer"])
        extractor = feature_extractor(recipe)
        data = recipe["data"]
        utterances = training_utterances(data["max_words"], data["four_word_samples"], data["seed"])
        cases = [WhisperCase(words, data["seed"] * 100_000 + i) for i, words in enumerate(utterances * data["renderings"])]
        audio = [synthesize(c.words, c.seed) for c in cases]
        features = torch.from_numpy(np.asarray(extractor(audio, sampling_rate=SAMPLE_RATE, return_tensors="np").input_features))
        sequences = [target_sequences(c, hf_tok) for c in cases]
        torch.manual_seed(recipe["training"]["seed"])
        model = WhisperForConditionalGeneration(whisper_config(recipe, hf_tok))
        loss = train_whisper(model, features, sequences, recipe["training"], hf_tok.convert_tokens_to_ids(ENDOFTEXT))
        logger.info("tiny Whisper: trained on %d utterances in %.1f s, loss %.5f", len(cases), time.monotonic() - t0, loss)
        model.save_pretrained(out, safe_serialization=True)
        hf_tok.save_pretrained(out)
        (out / "generation_config.json").write_text(json.dumps(generation_config(hf_tok, recipe), indent=2) + "\n")
        (out / "preprocessor_config.json").write_text(json.dumps(preprocessor_config(recipe), indent=2) + "\n")


def _build(out: Path, hf_dir: Path) -> None:
    """The product's export (serving/repository/export.py, as `--pull --task speech2text` runs it), fp32."""
    from serving.repository.export import export_speech_to_text

    with quiet_build():
        t0 = time.monotonic()
        export_speech_to_text(hf_dir, out, "fp32", logger.debug)
        for name in WHISPER_FILES:
            if not (out / name).is_file():
                raise RuntimeError(f"export did not produce {name} in {out}")
        t1 = time.monotonic()
        logger.info("tiny Whisper: exported in %.1f s", t1 - t0)
        verify_tiny_whisper(out)
        logger.info("tiny Whisper: verified in %.1f s", time.monotonic() - t1)


# --------------------------------------------------------------------------- openvino-genai


def transcribe(model_dir: Path, cases: tuple[WhisperCase, ...] = WHISPER_CASES, precision: str | None = None, **config: Any) -> list[Any]:
    """genai's results (``WhisperDecodedResults``) for each case, ``config`` as generate's keywords;
    ``precision`` ("f32", "bf16") overrides the CPU's default inference precision."""
    import openvino_genai

    properties = {"INFERENCE_PRECISION_HINT": precision} if precision else {}
    pipe = openvino_genai.WhisperPipeline(str(model_dir), "CPU", **properties)
    return [pipe.generate(case.audio().tolist(), **config) for case in cases]


def verify_tiny_whisper(model_dir: Path) -> None:
    """Raise RuntimeError unless genai transcribes and "translates" every WHISPER_CASES case
    exactly, with and without timestamps (one segment, 0 s to the last tone's end), at the CPU's
    default precision and in f32."""
    failures = []
    for precision in (None, "f32"):
        for task in ("transcribe", "translate"):
            results = transcribe(model_dir, precision=precision, task=task, return_timestamps=True)
            for case, result in zip(WHISPER_CASES, results, strict=True):
                expected = case.text if task == "transcribe" else case.translation
                got = [(round(c.start_ts, 2), round(c.end_ts, 2), c.text) for c in result.chunks]
                if result.texts[0] != expected or got != [(0.0, case.end_seconds, expected)]:
                    failures.append(f"{task} {case.words} ({precision or 'default precision'}): expected {expected!r}, got {got}")
        for case, result in zip(WHISPER_CASES, transcribe(model_dir, precision=precision), strict=True):
            if result.texts[0] != case.text:
                failures.append(f"{case.words} ({precision or 'default precision'}): expected {case.text!r}, got {result.texts[0]!r}")
    if failures:
        raise RuntimeError("tiny Whisper verification failed:\n  " + "\n  ".join(failures))

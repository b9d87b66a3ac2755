"""The tiny SpeechT5: a TOY text-to-speech model with seeded RANDOM weights (transformers
``SpeechT5ForTextToSpeech`` + ``SpeechT5HifiGan`` with tiny configs, a character tokenizer written
here) exported with optimum-intel (``text-to-audio``, the vocoder passed as a model kwarg) so
``openvino_genai.Text2SpeechPipeline`` returns a waveform. Its audio is noise: it checks plumbing,
shapes, determinism and the speaker-embedding contract, not speech.

What openvino-genai 2026.4 does with it (checked by test_tts.py):

* Files: ``openvino_encoder_model.xml``, ``openvino_decoder_model.xml``, ``openvino_postnet.xml``,
  ``openvino_vocoder.xml``, the tokenizer IRs and ``config.json`` (``reduction_factor``,
  ``num_mel_bins``).
* ``generate(text_or_texts, speaker_embedding=None, **config)``: the speaker embedding is an
  ``ov.Tensor`` float32 of shape (1, 512) (genai's fixed size, ``get_speaker_embedding_shape()``;
  the model's ``speaker_embedding_dim`` must be 512); (1, 256) or (512,) raise RuntimeError; without
  one genai uses a built-in default voice. Returns ``Text2SpeechDecodedResults``: ``speeches`` (one
  ``ov.Tensor`` float32 (1, samples) per text; the next generate overwrites its memory: copy it),
  ``output_sample_rate`` (16000, fixed for SpeechT5), ``perf_metrics``.
* Length: decoding stops when the stop head passes ``threshold`` (0.5) or after
  ``int(tokens * maxlenratio / reduction_factor)`` steps (``maxlenratio`` 20, ``minlenratio`` 0),
  2 mel frames a step here, 256 samples a frame. This toy never stops early, so "hello world"
  (12 tokens with ``</s>``) gives 120 steps, 61,440 samples (3.84 s). A list of texts is encoded as
  one padded batch: every speech gets the longest text's length. An empty text gives 1 token.
* ``speed`` is accepted but ignored by SpeechT5 (it is Kokoro's); a (2, 512) embedding raises a
  shape error from inside the decoder.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from tests.models.common import RECIPE_VERSION, cached_build, default_cache_root, package_versions, quiet_build

logger = logging.getLogger("tests.models.tts")

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
CHARACTERS = " abcdefghijklmnopqrstuvwxyz.,!?'"
#: genai's speaker embedding size.
SPEAKER_DIM = 512
SAMPLE_RATE = 16000


def tiny_tts_recipe() -> dict[str, Any]:
    """Everything that decides what :func:`build_tiny_tts` produces."""
    return {
        "recipe_version": RECIPE_VERSION,
        "kind": "tiny-tts",
        "seed": 0,
        "model": {
            "hidden_size": 32,
            "encoder_layers": 1,
            "decoder_layers": 1,
            "encoder_attention_heads": 2,
            "decoder_attention_heads": 2,
            "encoder_ffn_dim": 64,
            "decoder_ffn_dim": 64,
            "num_mel_bins": 80,
            "reduction_factor": 2,
            "speaker_embedding_dim": SPEAKER_DIM,
            "speech_decoder_prenet_units": 32,
            "speech_decoder_postnet_units": 32,
            "speech_decoder_postnet_layers": 2,
            "max_text_positions": 256,
            "max_speech_positions": 1024,
        },
        "vocoder": {
            "model_in_dim": 80,
            "sampling_rate": SAMPLE_RATE,
            "upsample_initial_channel": 32,
            "upsample_rates": [8, 8, 4],  # 256 samples per mel frame, as the real HiFi-GAN
            "upsample_kernel_sizes": [16, 16, 8],
            "resblock_kernel_sizes": [3],
            "resblock_dilation_sizes": [[1, 3]],
            "normalize_before": False,
        },
        # the stop head's bias: random weights would stop at the first frame; this never stops
        # early, so a waveform is maxlen long: int(tokens * maxlenratio / reduction_factor) steps
        "stop_bias": -20.0,
        # random HiFi-GAN weights give ~1e-7 amplitudes (silence once written as 16-bit PCM): the
        # output conv's weights are scaled up so the toy's noise is audible
        "vocoder_output_gain": 1e5,
        "tokenizer": {"specials": SPECIALS, "characters": CHARACTERS},
        "weight_format": "fp32",
        "versions": package_versions(),
    }


def build_tiny_tts_hf(cache_root: Path | None = None) -> Path:
    """The toy's Hugging Face SpeechT5 folder (random weights, tokenizer, the HiFi-GAN in vocoder/)
    that :func:`build_tiny_tts` exports: a ``--source_model`` for the pull tests (cached apart)."""
    recipe = tiny_tts_recipe()
    return cached_build(cache_root or default_cache_root(), "tiny-tts-hf", recipe, lambda out: _build_hf(out, recipe))


def build_tiny_tts(cache_root: Path | None = None) -> Path:
    """The toy SpeechT5 folder (random weights) that genai's Text2SpeechPipeline loads."""
    recipe = tiny_tts_recipe()
    root = cache_root or default_cache_root()
    return cached_build(root, "tiny-tts", recipe, lambda out: _build(out, build_tiny_tts_hf(root)))


def build_tokenizer() -> Any:
    """Characters as tokens (a BPE without merges: SpeechT5's own tokenizer is a character
    SentencePiece model), ``</s>`` appended as SpeechT5 does; unknown characters become ``<unk>``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate([*SPECIALS, *CHARACTERS])}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", vocab["</s>"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=256
    )


def _build_hf(out: Path, recipe: dict[str, Any]) -> None:
    import torch

    with quiet_build():
        from transformers import SpeechT5Config, SpeechT5ForTextToSpeech, SpeechT5HifiGan, SpeechT5HifiGanConfig

        t0 = time.monotonic()
        hf_tok = build_tokenizer()
        torch.manual_seed(recipe["seed"])
        config_kwargs: dict[str, Any] = {
            **recipe["model"],
            "vocab_size": len(hf_tok),
            "pad_token_id": hf_tok.pad_token_id,
            "bos_token_id": hf_tok.bos_token_id,
            "eos_token_id": hf_tok.eos_token_id,
            "decoder_start_token_id": 2,
        }
        model = SpeechT5ForTextToSpeech(SpeechT5Config(**config_kwargs)).eval()
        with torch.no_grad():
            model.speech_decoder_postnet.prob_out.bias.fill_(recipe["stop_bias"])
        vocoder_kwargs: dict[str, Any] = dict(recipe["vocoder"])
        vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig(**vocoder_kwargs)).eval()
        with torch.no_grad():
            vocoder.conv_post.weight.mul_(recipe["vocoder_output_gain"])
        model.save_pretrained(out, safe_serialization=True)
        hf_tok.save_pretrained(out)
        vocoder.save_pretrained(out / "vocoder", safe_serialization=True)  # where `--pull` looks for it
        logger.info("tiny TTS: made in %.1f s", time.monotonic() - t0)


def _build(out: Path, hf_dir: Path) -> None:
    t0 = time.monotonic()
    with quiet_build():
        export_tts(hf_dir, hf_dir / "vocoder", out)
    logger.info("tiny TTS: exported in %.1f s", time.monotonic() - t0)


#: The files genai's Text2SpeechPipeline reads.
TTS_FILES = (
    "openvino_encoder_model.xml",
    "openvino_decoder_model.xml",
    "openvino_postnet.xml",
    "openvino_vocoder.xml",
    "openvino_tokenizer.xml",
    "openvino_detokenizer.xml",
    "config.json",
)


def export_tts(hf_dir: Path, vocoder_dir: Path, out: Path) -> None:
    """The product's export (serving/repository/export.py, as `--pull --task text2speech` runs it:
    optimum-intel's text-to-audio with the vocoder as a model kwarg, then the tokenizer IRs), fp32."""
    from serving.repository.export import export_text_to_speech

    export_text_to_speech(hf_dir, out, vocoder_dir, "fp32", logger.debug)
    config = json.loads((out / "config.json").read_text())
    if config.get("reduction_factor") is None:
        raise RuntimeError(f"{out}/config.json lacks reduction_factor")
    for name in TTS_FILES:
        if not (out / name).is_file():
            raise RuntimeError(f"export did not produce {name} in {out}")

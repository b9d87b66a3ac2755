"""What a model repository holds: the tasks and weight formats, the files a servable needs, the
errors and progress of the repository commands, writing a file atomically, and listing servables."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

TASKS = ("text_generation", "embeddings", "rerank", "speech2text", "image_generation", "text2speech")
WEIGHT_FORMATS = ("fp32", "fp16", "int8", "int4")
DEFAULT_WEIGHT_FORMAT = "int8"  # as OVMS's pull with conversion
REPOSITORY_ENV = "OVMS_MODEL_REPOSITORY_PATH"  # OVMS's default for --model_repository_path
GRAPH_FILE = "graph.pbtxt"
IR_FILE = "openvino_model.xml"
VLM_IR_FILE = "openvino_language_model.xml"  # an image-text-to-text export's text decoder
TOKENIZER_IR = "openvino_tokenizer.xml"
DETOKENIZER_IR = "openvino_detokenizer.xml"
# Files a text-generation servable needs beside graph.pbtxt.
REQUIRED_LLM_FILES = (IR_FILE, "openvino_model.bin", TOKENIZER_IR, DETOKENIZER_IR, "config.json")
# ... an embeddings servable (pooling/normalisation come from the sentence-transformers files when present).
REQUIRED_EMBEDDINGS_FILES = (IR_FILE, "openvino_model.bin", TOKENIZER_IR, "config.json")
# ... a rerank servable (the calculator tokenizes query/document pairs with tokenizer.json).
REQUIRED_RERANK_FILES = (IR_FILE, "openvino_model.bin", "tokenizer.json", "config.json")
# ... a vision-language one (optimum-intel's image-text-to-text export; genai reads preprocessor_config.json).
REQUIRED_VLM_FILES = (
    VLM_IR_FILE,
    "openvino_text_embeddings_model.xml",
    "openvino_vision_embeddings_model.xml",
    TOKENIZER_IR,
    DETOKENIZER_IR,
    "config.json",
    "preprocessor_config.json",
)
# ... the media tasks' (what genai's Text2ImagePipeline / WhisperPipeline / Text2SpeechPipeline read).
REQUIRED_IMAGE_FILES = ("model_index.json", "scheduler/scheduler_config.json", "vae_decoder/openvino_model.xml")
REQUIRED_S2T_FILES = ("openvino_encoder_model.xml", "openvino_decoder_model.xml", TOKENIZER_IR, DETOKENIZER_IR, "config.json")
REQUIRED_T2S_FILES = (
    "openvino_encoder_model.xml",
    "openvino_decoder_model.xml",
    "openvino_postnet.xml",
    "openvino_vocoder.xml",
    TOKENIZER_IR,
    "config.json",
)
REQUIRED_FILES = {
    "text_generation": REQUIRED_LLM_FILES,
    "embeddings": REQUIRED_EMBEDDINGS_FILES,
    "rerank": REQUIRED_RERANK_FILES,
    "image_generation": REQUIRED_IMAGE_FILES,
    "speech2text": REQUIRED_S2T_FILES,
    "text2speech": REQUIRED_T2S_FILES,
}
# Tasks served by a genai media pipeline (one node of OVMS's, exported with their own optimum tasks).
MEDIA_TASKS = ("image_generation", "speech2text", "text2speech")
# optimum-intel export task per servable task.
OPTIMUM_TASKS = {
    "text_generation": "text-generation-with-past",
    "embeddings": "feature-extraction",
    "rerank": "text-classification",
    "image_generation": "text-to-image",
    "speech2text": "automatic-speech-recognition-with-past",
    "text2speech": "text-to-audio",
}
# Stock graph per servable task (graphs/stock/<file>).
# text_generation: OVMS's one-node HttpLLMCalculator graph, so OVMS can load a pulled folder too.
STOCK_GRAPHS = {
    "text_generation": "ovms_llm.pbtxt",
    "embeddings": "embeddings.pbtxt",
    "rerank": "rerank.pbtxt",
    "image_generation": "image_generation.pbtxt",  # the stock media graphs are OVMS's pull graphs
    "speech2text": "speech_to_text.pbtxt",
    "text2speech": "text_to_speech.pbtxt",
}
# The vocoder optimum-intel needs beside a SpeechT5 checkpoint when the folder has no vocoder/ (genai's documented one).
DEFAULT_VOCODER = "microsoft/speecht5_hifigan"
# Sentence-transformers files that say how token states become a sentence vector (copied when present).
SENTENCE_TRANSFORMERS_FILES = ("modules.json", "1_Pooling/config.json", "sentence_bert_config.json", "config_sentence_transformers.json")
# Hugging Face tokenizer files copied beside an exported model when present.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "merges.txt",
    "sentencepiece.bpe.model",
)

Progress = Callable[[str], None]


class UsageError(Exception):
    """A bad combination of flags (exit code 2)."""


class ModelRepositoryError(Exception):
    """The command could not be carried out (exit code 1)."""


def stderr_progress(message: str) -> None:
    print(f"ovserve: {message}", file=sys.stderr, flush=True)


def is_servable(folder: Path) -> bool:
    return (folder / GRAPH_FILE).is_file()


def is_openvino_ir(folder: Path) -> bool:
    """An OpenVINO export: a text model, or a vision-language model's text decoder."""
    return (folder / IR_FILE).is_file() or (folder / VLM_IR_FILE).is_file()


def is_media_ir(folder: Path, task: str) -> bool:
    """An OpenVINO export for a media task (a diffusers folder of IRs, or Whisper's / SpeechT5's encoder IR)."""
    if task == "image_generation":
        return (folder / "model_index.json").is_file() and (folder / "vae_decoder" / IR_FILE).is_file()
    return (folder / "openvino_encoder_model.xml").is_file()


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def list_models(repository: Path) -> list[str]:
    """Names (paths relative to the repository, with /) of the servables in it, sorted."""
    if not repository.is_dir():
        raise ModelRepositoryError(f"model repository not found: {repository}")
    found: list[str] = []
    for dirpath, dirnames, _ in os.walk(repository):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))  # skips half-built folders
        if here != repository and is_servable(here):
            found.append(here.relative_to(repository).as_posix())
            dirnames[:] = []  # a servable's subfolders are its own
    return sorted(found)

"""Preparing a servable (`--source_model`): name it, download it from Hugging Face (a snapshot or one
GGUF file) or take a local folder, export or copy it in a hidden folder renamed into place, write
its graph.pbtxt."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from calculators.llm.pipeline_type import is_vlm_folder
from serving.repository.export import (
    convert_tokenizer,
    export_encoder,
    export_image_generation,
    export_speech_to_text,
    export_text_generation,
    export_text_to_speech,
)
from serving.repository.graph_file import IMAGE_OPTIONS, write_graph
from serving.repository.layout import (
    DEFAULT_VOCODER,
    DEFAULT_WEIGHT_FORMAT,
    DETOKENIZER_IR,
    GRAPH_FILE,
    MEDIA_TASKS,
    REQUIRED_FILES,
    REQUIRED_VLM_FILES,
    TASKS,
    TOKENIZER_IR,
    WEIGHT_FORMATS,
    ModelRepositoryError,
    Progress,
    UsageError,
    is_media_ir,
    is_openvino_ir,
    is_servable,
    stderr_progress,
)
from serving.repository.vision import complete_vlm_folder, export_vision_language, is_hf_vision_language


@dataclass(frozen=True, slots=True)
class PreparedModel:
    name: str
    path: Path
    reused: bool  # the servable was there already (no --overwrite_models)


def servable_name(source: str) -> str:
    """The servable's name: the folder name of a local path, else the Hugging Face id as given."""
    local = Path(source).expanduser()
    if local.exists():
        return local.resolve().name
    return source.strip("/")


def _check_name(name: str) -> None:
    parts = name.split("/")
    if not name or any(p in ("", ".", "..") or p.startswith(".") for p in parts) or "\\" in name:
        raise UsageError(f"not a usable model name: {name!r}")


# config.json architectures served by a media pipeline.
_MEDIA_ARCHITECTURES = {"WhisperForConditionalGeneration": "speech2text", "SpeechT5ForTextToSpeech": "text2speech"}


def infer_task(folder: Path) -> str:
    """From config.json (and sentence-transformers files): image_generation for a diffusers folder
    (model_index.json), speech2text for Whisper, text2speech for SpeechT5's TTS, text_generation for
    a *ForCausalLM architecture or a vision-language model (as OVMS: one task, the folder picks the
    pipeline), rerank for *ForSequenceClassification, embeddings for a sentence-transformers folder
    (modules.json / sentence_bert_config.json) or a bare encoder (*Model); otherwise ask for --task."""
    if (folder / "model_index.json").is_file():
        return "image_generation"
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelRepositoryError(f"{folder}: no config.json, cannot tell the task: give --task") from None
    except json.JSONDecodeError as exc:
        raise ModelRepositoryError(f"{folder}/config.json: not valid JSON: {exc}") from None
    architectures = config.get("architectures") or []
    media = {_MEDIA_ARCHITECTURES[a] for a in map(str, architectures) if a in _MEDIA_ARCHITECTURES}
    if len(media) == 1:
        return media.pop()
    if is_hf_vision_language(config, ask_optimum=not is_openvino_ir(folder)):
        return "text_generation"
    if any(str(a).endswith("ForCausalLM") for a in architectures):
        return "text_generation"
    if any(str(a).endswith("ForSequenceClassification") for a in architectures):
        return "rerank"
    if (folder / "modules.json").is_file() or (folder / "sentence_bert_config.json").is_file():
        return "embeddings"
    if architectures and all(str(a).endswith("Model") and not str(a).endswith("PreTrainedModel") for a in architectures):
        return "embeddings"
    shown = ", ".join(map(str, architectures)) or "none listed"
    raise ModelRepositoryError(f"{folder}: cannot tell the task from its architectures ({shown}): give --task")


def prepare_model(
    source: str,
    repository: Path,
    *,
    name: str | None = None,
    task: str | None = None,
    weight_format: str = DEFAULT_WEIGHT_FORMAT,
    overwrite: bool = False,
    graph_options: dict[str, Any] | None = None,
    progress: Progress = stderr_progress,
    gguf_filename: str | None = None,
) -> PreparedModel:
    """Make ``repository/<name>`` a servable from ``source`` (local folder or Hugging Face id);
    with `gguf_filename`, from that one GGUF file of it."""
    if gguf_filename is not None:
        _check_gguf_filename(gguf_filename, task)
    if weight_format not in WEIGHT_FORMATS:
        raise UsageError(f"--weight-format must be one of {', '.join(WEIGHT_FORMATS)}")
    if task is not None and task not in TASKS:
        raise UsageError(f"--task must be one of {', '.join(TASKS)}")
    name = name or servable_name(source)
    _check_name(name)
    target = repository / name
    if target.exists() and not overwrite:
        if not is_servable(target):
            raise ModelRepositoryError(f"{target} exists but is not a servable (no {GRAPH_FILE}): remove it or give --overwrite_models")
        progress(f"{target} exists: reusing it (give --overwrite_models to prepare it again)")
        return PreparedModel(name, target, reused=True)
    local = Path(source).expanduser()
    if local.exists() and not local.is_dir():
        raise ModelRepositoryError(f"--source_model {source}: not a folder")
    if gguf_filename is not None:
        if local.exists():
            gguf = local.resolve() / gguf_filename
            if not gguf.is_file():
                raise ModelRepositoryError(f"--gguf_filename {gguf_filename}: not found in {local.resolve()}")
        else:
            gguf = download_file(source, gguf_filename, progress)
        with _building(target, overwrite) as build:
            _link_or_copy(str(gguf), str(build / Path(gguf_filename).name))
            progress(f"writing {GRAPH_FILE} (the GGUF is converted to OpenVINO IR when first served)")
            write_graph(build, graph_options or {})
        return PreparedModel(name, target, reused=False)
    folder = local.resolve() if local.exists() else download(source, progress)
    hub_id = None if local.exists() else source.strip("/")  # picks optimum-intel's per-model int4 defaults
    task = task or ("text_generation" if is_openvino_ir(folder) and not (folder / "config.json").exists() else infer_task(folder))
    image_flags = sorted(IMAGE_OPTIONS.intersection(graph_options or {}))
    if image_flags and task != "image_generation":
        raise UsageError(f"--{image_flags[0]} is an image generation option; {name!r} is {task}")
    with _building(target, overwrite) as build:
        if task in MEDIA_TASKS:
            _prepare_media(folder, build, task, weight_format, progress, hub_id)
        elif is_openvino_ir(folder):
            progress(f"{folder} is an OpenVINO model: taking it as is")
            _copy_tree(folder, build)
            if task == "text_generation" and (not (build / TOKENIZER_IR).is_file() or not (build / DETOKENIZER_IR).is_file()):
                progress("converting tokenizer (openvino_tokenizers)")
                convert_tokenizer(folder, build)
            elif task == "embeddings" and not (build / TOKENIZER_IR).is_file():
                progress("converting tokenizer (openvino_tokenizers)")
                convert_tokenizer(folder, build, with_detokenizer=False)
        elif task == "text_generation" and _hf_vision_language(folder):
            export_vision_language(folder, build, weight_format, progress, hub_id)
        elif task == "text_generation":
            export_text_generation(folder, build, weight_format, progress, hub_id)
        else:
            export_encoder(folder, build, task, weight_format, progress, hub_id)
        vlm = task == "text_generation" and is_vlm_folder(build)
        if vlm:
            complete_vlm_folder(build, progress)
        missing = [f for f in (REQUIRED_VLM_FILES if vlm else REQUIRED_FILES[task]) if not (build / f).is_file()]
        if missing:
            raise ModelRepositoryError(f"preparing {name!r}: missing {', '.join(missing)}")
        progress(f"writing {GRAPH_FILE}")
        write_graph(build, graph_options or {}, task=task)
    return PreparedModel(name, target, reused=False)


def _prepare_media(folder: Path, build: Path, task: str, weight_format: str, progress: Progress, hub_id: str | None) -> None:
    """An OpenVINO export taken as is, else the task's optimum-intel export (docs/ovms.md, "Pull")."""
    if is_media_ir(folder, task):
        progress(f"{folder} is an OpenVINO model: taking it as is")
        _copy_tree(folder, build)
    elif task == "image_generation":
        export_image_generation(folder, build, weight_format, progress, hub_id)
    elif task == "speech2text":
        export_speech_to_text(folder, build, weight_format, progress, hub_id)
    else:
        vocoder = folder / "vocoder"  # a HiFi-GAN saved beside the checkpoint, else genai's documented one
        if not (vocoder / "config.json").is_file():
            progress(f"{folder} has no vocoder/ folder: using {DEFAULT_VOCODER}")
            vocoder = download(DEFAULT_VOCODER, progress)
        export_text_to_speech(folder, build, vocoder, weight_format, progress, hub_id)


def _hf_vision_language(folder: Path) -> bool:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False  # the export reports what is wrong with the folder
    return isinstance(config, dict) and is_hf_vision_language(config)


@contextlib.contextmanager
def _building(target: Path, overwrite: bool) -> Iterator[Path]:
    """A hidden temporary folder beside `target`, renamed to `target` on success, removed on failure."""
    target.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        os.chmod(build, 0o755)  # mkdtemp makes it private; the servable is an ordinary folder
        yield build
        if target.exists():
            if not overwrite:
                raise ModelRepositoryError(f"{target} appeared meanwhile; not replacing it")
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / "model")
            os.replace(build, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(build, target)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise


def _link_or_copy(src: str, dst: str) -> None:
    # os.link() links a symlink itself (Linux link(2)), and a hub cache's snapshot files are
    # relative symlinks to its blobs, broken once moved: link (or copy) the file they point at.
    src = os.path.realpath(src)
    try:
        os.link(src, dst)  # same file system: no copy
    except OSError:
        shutil.copy2(src, dst)


def _copy_tree(src: Path, dst: Path) -> None:
    ignore = shutil.ignore_patterns(".git", ".cache", ".gitattributes", GRAPH_FILE)
    shutil.copytree(src, dst, ignore=ignore, copy_function=_link_or_copy, dirs_exist_ok=True)


def download(repo_id: str, progress: Progress) -> Path:
    """snapshot_download into the Hugging Face cache (HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE apply)."""
    if repo_id.startswith((".", "/", "~")) or repo_id.count("/") > 1:
        raise ModelRepositoryError(f"--source_model {repo_id}: no such folder (and not a Hugging Face id)")
    try:
        from huggingface_hub import constants, snapshot_download
    except ImportError as exc:  # pragma: no cover - installed with the project
        raise ModelRepositoryError(f"downloading needs huggingface_hub: {exc}") from None
    endpoint = os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
    progress(f"downloading {repo_id} from {endpoint}")
    try:
        path = snapshot_download(repo_id)
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        offline = " (offline mode: HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else ""
        raise ModelRepositoryError(f"cannot download {repo_id}{offline}: {type(exc).__name__}: {detail}") from None
    return Path(path)


def _check_gguf_filename(filename: str, task: str | None) -> None:
    path = Path(filename)
    if path.suffix.lower() != ".gguf" or path.is_absolute() or ".." in path.parts or not path.name:
        raise UsageError(f"--gguf_filename {filename}: expected a .gguf file name inside the source repository")
    if re.search(r"-\d{5}-of-\d{5}\.gguf$", filename, re.I):
        raise UsageError(f"--gguf_filename {filename}: split GGUF files are not supported; merge them first (llama-gguf-split --merge)")
    if task not in (None, "text_generation"):
        raise UsageError("--gguf_filename serves text generation only (--task text_generation)")


def download_file(repo_id: str, filename: str, progress: Progress) -> Path:
    """hf_hub_download of one file into the Hugging Face cache (resumes a partial download)."""
    if repo_id.startswith((".", "/", "~")) or repo_id.count("/") > 1:
        raise ModelRepositoryError(f"--source_model {repo_id}: no such folder (and not a Hugging Face id)")
    from huggingface_hub import constants, hf_hub_download

    endpoint = os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
    progress(f"downloading {filename} of {repo_id} from {endpoint}")
    try:
        path = hf_hub_download(repo_id, filename)
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        offline = " (offline mode: HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else ""
        raise ModelRepositoryError(f"cannot download {filename} of {repo_id}{offline}: {type(exc).__name__}: {detail}") from None
    return Path(path)

"""OVMS's model-repository commands: pull/export a model, add it to / remove it from config.json, list.

Flags (OVMS's names and meanings):

* ``--source_model ID_OR_PATH --model_repository_path DIR [--task ...] [--weight-format ...]
  [--pull] [--overwrite_models]``: prepare a servable in ``DIR/<name>``. ``<name>`` is the Hugging
  Face id as given (``OpenVINO/Qwen3-8B-int4-ov`` -> ``DIR/OpenVINO/Qwen3-8B-int4-ov``, as OVMS) or
  the folder name of a local path; ``--model_name`` overrides it. The source is a local folder or a
  Hugging Face id (downloaded with huggingface_hub: ``HF_ENDPOINT``, ``HF_TOKEN``,
  ``HF_HUB_OFFLINE`` apply). An OpenVINO IR folder (``openvino_model.xml``) is taken as is; a
  PyTorch folder is exported with optimum-intel plus openvino_tokenizers (``text_generation``:
  text-generation-with-past; ``embeddings``: feature-extraction, with the sentence-transformers
  pooling files; ``rerank``: text-classification, with tokenizer.json). ``--task`` defaults to what
  config.json says (see :func:`infer_task`). A ``graph.pbtxt`` (the task's stock graph,
  ``models_path: "./"``, with the CLI's LLM flags / device) is written beside the model.
  Everything is built in a hidden temporary folder next to the target and renamed into place at
  the end, so a half export never looks like a servable. An existing target is reused unless
  ``--overwrite_models``. ``--pull`` stops there; otherwise the model is served (added to
  ``--config_path`` when one is given, else served alone as with ``--model_path``).
* ``--add_to_config --config_path FILE_OR_DIR --model_name NAME [--model_path PATH |
  --model_repository_path DIR]``: add (or update) a ``model_config_list`` entry; ``base_path`` is
  written relative to the config file's folder when it lies inside it. The file is created when
  missing.
* ``--remove_from_config --config_path FILE_OR_DIR --model_name NAME``.
* ``--list_models --model_repository_path DIR``: print the servables (folders with a graph.pbtxt).

The serving CLI calls :func:`add_model_flags` on its parser and :func:`handle_model_commands`
before it serves.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

TASKS = ("text_generation", "embeddings", "rerank")
WEIGHT_FORMATS = ("fp32", "fp16", "int8", "int4")
DEFAULT_WEIGHT_FORMAT = "int8"  # as OVMS's pull with conversion
REPOSITORY_ENV = "OVMS_MODEL_REPOSITORY_PATH"  # OVMS's default for --model_repository_path
GRAPH_FILE = "graph.pbtxt"
IR_FILE = "openvino_model.xml"
TOKENIZER_IR = "openvino_tokenizer.xml"
DETOKENIZER_IR = "openvino_detokenizer.xml"
# Files a text-generation servable needs beside graph.pbtxt.
REQUIRED_LLM_FILES = (IR_FILE, "openvino_model.bin", TOKENIZER_IR, DETOKENIZER_IR, "config.json")
# ... an embeddings servable (pooling/normalisation come from the sentence-transformers files when present).
REQUIRED_EMBEDDINGS_FILES = (IR_FILE, "openvino_model.bin", TOKENIZER_IR, "config.json")
# ... a rerank servable (the calculator tokenizes query/document pairs with tokenizer.json).
REQUIRED_RERANK_FILES = (IR_FILE, "openvino_model.bin", "tokenizer.json", "config.json")
REQUIRED_FILES = {"text_generation": REQUIRED_LLM_FILES, "embeddings": REQUIRED_EMBEDDINGS_FILES, "rerank": REQUIRED_RERANK_FILES}
# optimum-intel export task per servable task.
OPTIMUM_TASKS = {"text_generation": "text-generation-with-past", "embeddings": "feature-extraction", "rerank": "text-classification"}
# Stock graph per servable task (graphs/stock/<file>).
STOCK_GRAPHS = {"text_generation": "llm.pbtxt", "embeddings": "embeddings.pbtxt", "rerank": "rerank.pbtxt"}
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
# LLM node options of the stock graph that CLI flags may set when a graph is written.
LLM_FLAG_OPTIONS = {
    "target_device": "device",
    "plugin_config": "plugin_config",
    "cache_size": "cache_size",
    "max_num_seqs": "max_num_seqs",
    "max_num_batched_tokens": "max_num_batched_tokens",
    "enable_prefix_caching": "enable_prefix_caching",
    "dynamic_split_fuse": "dynamic_split_fuse",
    "max_tokens_limit": "max_tokens_limit",
    "tool_parser": "tool_parser",
    "reasoning_parser": "reasoning_parser",
}

Progress = Callable[[str], None]


class UsageError(Exception):
    """A bad combination of flags (exit code 2)."""


class ModelRepositoryError(Exception):
    """The command could not be carried out (exit code 1)."""


def stderr_progress(message: str) -> None:
    print(f"ovserve: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- CLI


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "models: pull, export, configure",
        "prepare a servable from a Hugging Face id or a local folder, and edit config.json (as OVMS)",
    )
    group.add_argument("--source_model", help="Hugging Face model id, or a local folder (PyTorch/safetensors or OpenVINO IR)")
    group.add_argument(
        "--model_repository_path",
        type=Path,
        help=f"folder that holds prepared servables (default: ${REPOSITORY_ENV} when set)",
    )
    group.add_argument("--task", choices=TASKS, help="what the model serves (default: from its config.json)")
    group.add_argument(
        "--weight-format",
        "--weight_format",
        dest="weight_format",
        choices=WEIGHT_FORMATS,
        help=f"weight precision when exporting [{DEFAULT_WEIGHT_FORMAT}]",
    )
    group.add_argument("--pull", action="store_true", help="only prepare --source_model, then exit")
    group.add_argument("--overwrite_models", action="store_true", help="prepare again even if the servable exists")
    group.add_argument("--add_to_config", action="store_true", help="add --model_name to --config_path, then exit")
    group.add_argument("--remove_from_config", action="store_true", help="remove --model_name from --config_path, then exit")
    group.add_argument("--list_models", action="store_true", help="list the servables in --model_repository_path, then exit")


def handle_model_commands(args: argparse.Namespace, progress: Progress = stderr_progress) -> int | None:
    """Run the model commands the flags ask for; an exit code, or None when the caller should serve.

    With ``--source_model`` and no ``--pull`` the model is prepared and None returned: then
    ``args.model_path``/``args.model_name`` name the prepared folder (single-model mode), or, with
    ``--config_path``, the model has been added to that config file.
    """
    try:
        return _handle(args, progress)
    except UsageError as exc:
        print(f"ovserve: {exc}", file=sys.stderr)
        return 2
    except ModelRepositoryError as exc:
        print(f"ovserve: {exc}", file=sys.stderr)
        return 1


def _handle(args: argparse.Namespace, progress: Progress) -> int | None:
    source = getattr(args, "source_model", None)
    pull = getattr(args, "pull", False)
    add = getattr(args, "add_to_config", False)
    remove = getattr(args, "remove_from_config", False)
    listing = getattr(args, "list_models", False)
    repository: Path | None = getattr(args, "model_repository_path", None)
    if repository is None and os.environ.get(REPOSITORY_ENV) and (source or listing or add):
        repository = Path(os.environ[REPOSITORY_ENV])
    commands = [flag for flag, on in (("--add_to_config", add), ("--remove_from_config", remove), ("--list_models", listing)) if on]
    if len(commands) > 1:
        raise UsageError(f"give only one of {', '.join(commands)}")
    if pull and source is None:
        raise UsageError("--pull needs --source_model")
    if source is None:
        for flag, value in (
            ("--task", None if getattr(args, "model_path", None) else getattr(args, "task", None)),  # single-model mode takes it
            ("--weight-format", getattr(args, "weight_format", None)),
            ("--overwrite_models", getattr(args, "overwrite_models", False) or None),
        ):
            if value is not None:
                raise UsageError(f"{flag} needs --source_model")
    if source is not None and (remove or listing):
        raise UsageError(f"--source_model cannot be combined with {commands[0]}")

    if listing:
        if repository is None:
            raise UsageError("--list_models needs --model_repository_path")
        for name in list_models(repository):
            print(name)
        return 0
    if remove:
        if args.config_path is None or not args.model_name:
            raise UsageError("--remove_from_config needs --config_path and --model_name")
        path = remove_from_config(args.config_path, args.model_name)
        progress(f"removed {args.model_name!r} from {path}")
        return 0
    if add and source is None:
        if args.config_path is None or not args.model_name:
            raise UsageError("--add_to_config needs --config_path and --model_name")
        if args.model_path is not None and repository is not None:
            raise UsageError("--add_to_config takes --model_path or --model_repository_path, not both")
        config = config_file_path(args.config_path)
        if args.model_path is not None:
            base_path: str | Path = args.model_path
        elif repository is not None:
            base_path = repository / args.model_name
        else:
            base_path = args.model_name  # OVMS: the name, relative to the config file's folder
        path = add_to_config(config, args.model_name, base_path)
        progress(f"added {args.model_name!r} to {path}")
        return 0
    if source is None:
        if repository is not None:
            raise UsageError("--model_repository_path is used with --source_model, --list_models or --add_to_config")
        return None  # plain serving

    # --source_model
    if repository is None:
        raise UsageError("--source_model needs --model_repository_path")
    if args.model_path is not None:
        raise UsageError("--source_model and --model_path do not go together (the model path is <repository>/<name>)")
    if add and args.config_path is None:
        raise UsageError("--add_to_config needs --config_path")
    prepared = prepare_model(
        source,
        repository,
        name=args.model_name or None,
        task=args.task,
        weight_format=args.weight_format or DEFAULT_WEIGHT_FORMAT,
        overwrite=args.overwrite_models,
        graph_options=graph_options_from_args(args),
        progress=progress,
    )
    progress(f"servable {prepared.name!r} ready in {prepared.path}")
    if add or (args.config_path is not None and not pull):
        path = add_to_config(config_file_path(args.config_path), prepared.name, prepared.path)
        progress(f"added {prepared.name!r} to {path}")
    if pull or add:
        return 0
    if args.config_path is None:
        args.model_path = prepared.path
        args.model_name = prepared.name
    return None


def graph_options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    options = {}
    for flag, option in LLM_FLAG_OPTIONS.items():
        value = getattr(args, flag, None)
        if value is not None:
            options[option] = value
    return options


# --------------------------------------------------------------------------- preparing a servable


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


def is_servable(folder: Path) -> bool:
    return (folder / GRAPH_FILE).is_file()


def is_openvino_ir(folder: Path) -> bool:
    return (folder / IR_FILE).is_file()


def infer_task(folder: Path) -> str:
    """From config.json (and sentence-transformers files): text_generation for a *ForCausalLM
    architecture, rerank for *ForSequenceClassification, embeddings for a sentence-transformers
    folder (modules.json / sentence_bert_config.json) or a bare encoder (*Model); otherwise ask for --task."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelRepositoryError(f"{folder}: no config.json, cannot tell the task: give --task") from None
    except json.JSONDecodeError as exc:
        raise ModelRepositoryError(f"{folder}/config.json: not valid JSON: {exc}") from None
    architectures = config.get("architectures") or []
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
) -> PreparedModel:
    """Make ``repository/<name>`` a servable from ``source`` (local folder or Hugging Face id)."""
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
    if local.exists():
        if not local.is_dir():
            raise ModelRepositoryError(f"--source_model {source}: not a folder")
        folder = local.resolve()
    else:
        folder = download(source, progress)
    task = task or ("text_generation" if is_openvino_ir(folder) and not (folder / "config.json").exists() else infer_task(folder))
    with _building(target, overwrite) as build:
        if is_openvino_ir(folder):
            progress(f"{folder} is an OpenVINO model: taking it as is")
            _copy_tree(folder, build)
            if task == "text_generation" and (not (build / TOKENIZER_IR).is_file() or not (build / DETOKENIZER_IR).is_file()):
                progress("converting tokenizer (openvino_tokenizers)")
                convert_tokenizer(folder, build)
            elif task == "embeddings" and not (build / TOKENIZER_IR).is_file():
                progress("converting tokenizer (openvino_tokenizers)")
                convert_tokenizer(folder, build, with_detokenizer=False)
        elif task == "text_generation":
            export_text_generation(folder, build, weight_format, progress)
        else:
            export_encoder(folder, build, task, weight_format, progress)
        missing = [f for f in REQUIRED_FILES[task] if not (build / f).is_file()]
        if missing:
            raise ModelRepositoryError(f"preparing {name!r}: missing {', '.join(missing)}")
        progress(f"writing {GRAPH_FILE}")
        write_graph(build, graph_options or {}, task=task)
    return PreparedModel(name, target, reused=False)


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
    try:
        os.link(src, dst)  # follows symlinks (a hub cache's blobs); same file system: no copy
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


def _require_openvino_tokenizers() -> Any:
    try:
        import openvino_tokenizers
    except ImportError as exc:
        raise ModelRepositoryError(f"converting the tokenizer needs openvino_tokenizers (pip install openvino-tokenizers): {exc}") from None
    return openvino_tokenizers


def convert_tokenizer(hf_folder: Path, out: Path, *, with_detokenizer: bool = True, number_of_inputs: int = 1) -> None:
    """openvino_tokenizer.xml (and openvino_detokenizer.xml) from the folder's Hugging Face tokenizer;
    ``number_of_inputs=2`` makes a pair tokenizer (query, document) for a cross-encoder."""
    import openvino as ov
    from transformers import AutoTokenizer

    openvino_tokenizers = _require_openvino_tokenizers()
    try:
        hf_tok = AutoTokenizer.from_pretrained(hf_folder)
        if with_detokenizer:
            ov_tok, ov_detok = openvino_tokenizers.convert_tokenizer(hf_tok, with_detokenizer=True)
        else:
            kwargs = {"number_of_inputs": number_of_inputs} if number_of_inputs != 1 else {}
            ov_tok, ov_detok = openvino_tokenizers.convert_tokenizer(hf_tok, **kwargs), None
    except Exception as exc:
        raise ModelRepositoryError(f"cannot convert the tokenizer of {hf_folder}: {type(exc).__name__}: {exc}") from None
    ov.save_model(ov_tok, out / TOKENIZER_IR)
    if ov_detok is not None:
        ov.save_model(ov_detok, out / DETOKENIZER_IR)


def _ov_config(weight_format: str) -> Any:
    from optimum.intel import OVConfig, OVWeightQuantizationConfig

    if weight_format in ("fp32", "fp16"):
        return OVConfig(dtype=weight_format)
    if weight_format == "int8":
        return OVConfig(quantization_config=OVWeightQuantizationConfig(bits=8, group_size=-1, ratio=1.0))
    return OVConfig(quantization_config=OVWeightQuantizationConfig(bits=4, group_size=128, ratio=1.0))


def _optimum_export(hf_folder: Path, out: Path, task: str, weight_format: str, progress: Progress, **extra: Any) -> None:
    """optimum-intel's main_export with our settings; any failure is one clear ModelRepositoryError."""
    _require_openvino_tokenizers()  # optimum silently skips the tokenizer without it: check first
    try:
        from optimum.exporters.openvino import main_export
    except ImportError as exc:
        raise ModelRepositoryError(f"exporting needs optimum-intel (pip install optimum-intel): {exc}") from None
    progress(f"exporting {hf_folder} to OpenVINO ({weight_format} weights, optimum-intel, task {task})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch tracing warnings: noise for someone pulling a model
            main_export(
                str(hf_folder),
                output=out,
                task=task,
                ov_config=_ov_config(weight_format),
                convert_tokenizer=False,
                local_files_only=True,
                **extra,
            )
    except Exception as exc:
        raise ModelRepositoryError(f"export of {hf_folder} failed: {type(exc).__name__}: {exc}") from None


def export_text_generation(hf_folder: Path, out: Path, weight_format: str, progress: Progress) -> None:
    """optimum-intel export (stateful, with KV cache) plus openvino_tokenizers conversion."""
    _optimum_export(hf_folder, out, "text-generation-with-past", weight_format, progress)
    progress("converting tokenizer (openvino_tokenizers)")
    convert_tokenizer(hf_folder, out)
    # optimum writes most of these; make sure of the ones serving reads (chat template, generation defaults)
    kept = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja")
    for file in (*kept, "special_tokens_map.json"):
        if not (out / file).exists() and (hf_folder / file).is_file():
            shutil.copy2(hf_folder / file, out / file)


def export_encoder(hf_folder: Path, out: Path, task: str, weight_format: str, progress: Progress) -> None:
    """Embeddings (optimum task feature-extraction: the IR gives token states; pooling comes from
    the copied sentence-transformers files) or rerank (text-classification: a cross-encoder's
    logits) export, plus the tokenizer: openvino_tokenizer.xml (a pair tokenizer for rerank) and
    the Hugging Face tokenizer files."""
    # token states / logits; pooling is the embeddings calculator's
    _optimum_export(hf_folder, out, OPTIMUM_TASKS[task], weight_format, progress, library_name="transformers")
    progress("converting tokenizer (openvino_tokenizers)")
    try:
        convert_tokenizer(hf_folder, out, with_detokenizer=False, number_of_inputs=2 if task == "rerank" else 1)
    except ModelRepositoryError as exc:
        if task != "rerank":
            raise
        progress(f"no OpenVINO pair tokenizer ({exc}); the rerank calculator uses tokenizer.json")
    copied = ("config.json", *TOKENIZER_FILES, *(SENTENCE_TRANSFORMERS_FILES if task == "embeddings" else ()))
    for file in copied:
        if (hf_folder / file).is_file():
            (out / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(hf_folder / file, out / file)  # the originals, not optimum's re-saved ones


# --------------------------------------------------------------------------- graph.pbtxt

# The one node-options block of each stock graph (LLMCalculatorOptions, or the embeddings/rerank node's)
_OPTIONS_BLOCK = re.compile(r"(\[type\.googleapis\.com/mediapipe\.\w+Options\] \{\n)(.*?)(\n\s*\})", re.S)
# Options the CLI may set on an embeddings/rerank node (its other flags are the LLM node's).
ENCODER_OPTIONS = {"device": "target_device"}


def _pbtxt_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        value = json.dumps(value)
    return json.dumps(str(value))


def graph_text(options: dict[str, Any] | None = None, task: str = "text_generation") -> str:
    """The task's stock graph with ``models_path: "./"`` and `options` set on its node (for
    embeddings/rerank only the device, as ``target_device``; the other options are the LLM node's)."""
    text = resources.files("graphs.stock").joinpath(STOCK_GRAPHS[task]).read_text(encoding="utf-8")
    llm = task == "text_generation"
    match = _OPTIONS_BLOCK.search(text)
    if match is None:  # pragma: no cover - the stock graph's shape
        raise RuntimeError(f"graphs/stock/{STOCK_GRAPHS[task]}: no calculator options block")
    values: dict[str, Any] = {}
    indent = "      "
    for line in match.group(2).splitlines():
        key, _, raw = line.strip().partition(":")
        values[key.strip()] = raw.strip()
        indent = line[: len(line) - len(line.lstrip())]
    values["models_path"] = '"./"'
    for key, value in (options or {}).items():
        if llm:
            values[key] = _pbtxt_value(value)
        elif key in ENCODER_OPTIONS:
            values[ENCODER_OPTIONS[key]] = _pbtxt_value(value)
    body = "\n".join(f"{indent}{key}: {raw}" for key, raw in values.items())
    kind = {"text_generation": "LLM", "embeddings": "embeddings", "rerank": "rerank"}[task]
    header = f"# Written by `ovserve --source_model` (the stock {kind} graph); the model files sit beside it.\n"
    return header + text[: match.start(2)] + body + text[match.end(2) :]


def write_graph(folder: Path, options: dict[str, Any] | None = None, task: str = "text_generation") -> Path:
    from graphs.pbtxt import parse_graph

    text = graph_text(options, task)
    parse_graph(text, source=str(folder / GRAPH_FILE))  # GraphConfigError on a bad option value
    path = folder / GRAPH_FILE
    _atomic_write(path, text)
    return path


# --------------------------------------------------------------------------- config.json


def config_file_path(config_path: Path) -> Path:
    """OVMS accepts a folder for --config_path in these commands: its config.json."""
    return config_path / "config.json" if config_path.is_dir() else config_path


def _atomic_write(path: Path, text: str) -> None:
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


def _read_config(path: Path, create: bool) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if create:
            return {"model_config_list": []}
        raise ModelRepositoryError(f"config file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise ModelRepositoryError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ModelRepositoryError(f"{path}: not a JSON object")
    for key in ("model_config_list", "mediapipe_config_list"):
        if not isinstance(raw.get(key, []), list):
            raise ModelRepositoryError(f"{path}: {key} is not a list")
    return raw


def _entry_name(entry: Any, key: str) -> str | None:
    if not isinstance(entry, dict):
        return None
    if key == "model_config_list":
        config = entry.get("config")
        return config.get("name") if isinstance(config, dict) else None
    return entry.get("name")


def relative_base_path(config: Path, base_path: str | Path) -> str:
    """`base_path` as written into `config`: relative paths stay as given (they are relative to the
    config file's folder, as OVMS reads them); absolute ones become relative when inside that folder."""
    base = Path(base_path).expanduser()
    if not base.is_absolute():
        return base.as_posix()
    root = config.resolve().parent
    resolved = base.resolve()
    if resolved.is_relative_to(root):
        return resolved.relative_to(root).as_posix() or "."
    return resolved.as_posix()


def add_to_config(config_path: Path, name: str, base_path: str | Path) -> Path:
    """Add (or update) `name` in `config_path`'s model_config_list; the file is created when missing."""
    path = config_file_path(config_path)
    config = _read_config(path, create=True)
    written = relative_base_path(path, base_path)
    folder = path.resolve().parent / written
    if not is_servable(folder):
        raise ModelRepositoryError(f"{folder}: no {GRAPH_FILE} there (prepare it first, e.g. --pull --source_model ...)")
    if any(_entry_name(e, "mediapipe_config_list") == name for e in config.get("mediapipe_config_list", [])):
        raise ModelRepositoryError(f"{path}: {name!r} is already a mediapipe_config_list entry")
    models = config.setdefault("model_config_list", [])
    for entry in models:
        if _entry_name(entry, "model_config_list") == name:
            entry["config"]["base_path"] = written
            break
    else:
        models.append({"config": {"name": name, "base_path": written}})
    _atomic_write(path, json.dumps(config, indent=4) + "\n")
    return path


def remove_from_config(config_path: Path, name: str) -> Path:
    path = config_file_path(config_path)
    config = _read_config(path, create=False)
    found = False
    for key in ("model_config_list", "mediapipe_config_list"):
        if key in config:
            kept = [e for e in config[key] if _entry_name(e, key) != name]
            found = found or len(kept) != len(config[key])
            config[key] = kept
    if not found:
        raise ModelRepositoryError(f"{path}: no servable named {name!r}")
    _atomic_write(path, json.dumps(config, indent=4) + "\n")
    return path


# --------------------------------------------------------------------------- listing


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

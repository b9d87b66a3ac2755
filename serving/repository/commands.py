"""OVMS's model-repository commands: pull/export a model, add it to / remove it from config.json, list.
This module holds the flags and their dispatch; the work is done in its sibling modules.

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
* ``--source_model ID_OR_PATH --gguf_filename FILE.gguf``: only that GGUF file is taken (from the
  local folder, or downloaded with ``hf_hub_download``: resumable, with huggingface_hub's progress
  bar) into ``DIR/<name>/`` beside a text-generation ``graph.pbtxt``; it is converted to OpenVINO
  IR when first served (calculators/llm/gguf.py caches the conversion), as OVMS loads GGUF at start.
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
import os
import sys
from pathlib import Path
from typing import Any

from calculators.llm.flags import PULL_OPTIONS
from serving.repository.config_edit import add_to_config, config_file_path, remove_from_config
from serving.repository.layout import (
    DEFAULT_WEIGHT_FORMAT,
    REPOSITORY_ENV,
    TASKS,
    WEIGHT_FORMATS,
    ModelRepositoryError,
    Progress,
    UsageError,
    list_models,
    stderr_progress,
)
from serving.repository.pull import prepare_model


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
    group.add_argument(
        "--gguf_filename",
        help="with --source_model: take only this .gguf file of the repository (served through openvino-genai's GGUF reader)",
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
    gguf_filename = getattr(args, "gguf_filename", None)
    if gguf_filename is not None and source is None:
        raise UsageError("--gguf_filename needs --source_model")
    if gguf_filename is not None and getattr(args, "weight_format", None):
        raise UsageError("--weight-format does not apply with --gguf_filename (the GGUF's own quantization is served)")
    model_path = getattr(args, "model_path", None)
    if source is None and model_path is not None and not getattr(args, "model_name", None) and model_path.suffix.lower() == ".gguf":
        args.model_name = model_path.stem  # a GGUF file serves under its name without ".gguf"
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
        gguf_filename=gguf_filename,
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
    """The node options for the graph.pbtxt written: the LLM ones of the flags marked `pull`
    (calculators/llm/options.py; device and plugin_config apply to every task) and the image
    generation flags (serving/image_flags.py)."""
    from serving.image_flags import image_node_options

    options = {option: getattr(args, flag) for flag, option in PULL_OPTIONS.items() if getattr(args, flag, None) is not None}
    try:
        return {**options, **image_node_options(args)}
    except ValueError as exc:
        raise UsageError(str(exc)) from None

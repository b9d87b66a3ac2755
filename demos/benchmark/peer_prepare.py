"""Make a copy of an ovserve model folder that the peer server (openvino-openai-api 0.1.1) can load.

Runs inside the peer's venv (openvino 2025.0): ``peer_prepare.py MODEL_DIR OUT_DIR [--ignore-eos]``.
The source folder is never modified. What the copy changes, and why:

* ``openvino_tokenizer.xml`` / ``openvino_detokenizer.xml``: tokenizers converted by
  openvino-tokenizers 2026.x use ops (``Truncate``) that openvino-tokenizers 2025.0 cannot read, so
  when the original tokenizer does not load here it is re-converted from the folder's HF tokenizer
  (``tokenizer.json`` + ``tokenizer_config.json``) with this venv's openvino-tokenizers, and checked
  against the HF tokenizer on a few strings. The model IR (``openvino_model.xml``) is kept as is:
  openvino 2025.0 reads the 2026.x export.
* ``tokenizer_config.json``: the peer reads the chat template from its ``chat_template`` key and
  refuses to start without it; when missing it is filled from ``chat_template.jinja``.
* ``generation_config.json`` (only with ``--ignore-eos``): ``"ignore_eos": true``, because the peer
  drops the request's ``ignore_eos``; LLMPipeline takes its defaults from this file.

A ``peer_prepared.json`` in the copy records the source and what was done.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import openvino as ov
import openvino_tokenizers  # noqa: F401  (registers the tokenizer ops with openvino)

SKIP = {"hf", "openvino_tokenizer.xml", "openvino_tokenizer.bin", "openvino_detokenizer.xml", "openvino_detokenizer.bin"}
CHECK_TEXTS = ["Say this is a test", "Hello, world! How are you?", "café 🥐 <|im_start|>user\nhi<|im_end|>\n"]


def _loads(path: Path) -> bool:
    try:
        ov.Core().read_model(path)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not readable by this openvino"
        return False


def _tokenizer(src: Path, out: Path) -> str:
    if _loads(src / "openvino_tokenizer.xml") and _loads(src / "openvino_detokenizer.xml"):
        for name in ("openvino_tokenizer", "openvino_detokenizer"):
            for ext in (".xml", ".bin"):
                shutil.copy2(src / (name + ext), out / (name + ext))
        return "original"
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")  # "None of PyTorch ... found"
    from transformers import AutoTokenizer

    hf_tok = AutoTokenizer.from_pretrained(src)
    tok, detok = openvino_tokenizers.convert_tokenizer(hf_tok, with_detokenizer=True)
    ov.save_model(tok, out / "openvino_tokenizer.xml")
    ov.save_model(detok, out / "openvino_detokenizer.xml")
    compiled = ov.Core().compile_model(out / "openvino_tokenizer.xml", "CPU")
    for text in CHECK_TEXTS:
        ours = compiled([text])["input_ids"][0].tolist()
        theirs = hf_tok(text, add_special_tokens=True)["input_ids"]
        if ours != theirs:
            sys.exit(f"re-converted tokenizer disagrees with the HF tokenizer on {text!r}: {ours} != {theirs}")
    return f"re-converted from tokenizer.json with openvino-tokenizers {metadata.version('openvino-tokenizers')}"


def prepare(src: Path, out: Path, ignore_eos: bool) -> None:
    if not (src / "openvino_model.xml").is_file():
        sys.exit(f"{src}: no openvino_model.xml")
    if not _loads(src / "openvino_model.xml"):
        sys.exit(f"{src}/openvino_model.xml: openvino {ov.__version__} cannot read this IR")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    tmp.chmod(0o755)
    try:
        for item in src.iterdir():
            if item.name not in SKIP and item.is_file():
                shutil.copy2(item, tmp / item.name)
        tokenizer = _tokenizer(src, tmp)

        cfg_path = tmp / "tokenizer_config.json"
        cfg = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
        template = "tokenizer_config.json"
        if not cfg.get("chat_template"):
            jinja = src / "chat_template.jinja"
            if not jinja.exists():
                sys.exit(f"{src}: no chat template (neither in tokenizer_config.json nor chat_template.jinja)")
            cfg["chat_template"] = jinja.read_text()
            cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False))
            template = "copied from chat_template.jinja into tokenizer_config.json"

        if ignore_eos:
            gen_path = tmp / "generation_config.json"
            gen = json.loads(gen_path.read_text()) if gen_path.exists() else {}
            gen["ignore_eos"] = True
            gen_path.write_text(json.dumps(gen, indent=2))

        build_info = src / "build_info.json"
        record = {
            "source": str(src),
            "source_hash": json.loads(build_info.read_text()).get("hash") if build_info.exists() else None,
            "openvino": ov.__version__,
            "model_ir": "original (read by this openvino as is)",
            "tokenizer": tokenizer,
            "chat_template": template,
            "ignore_eos": ignore_eos,
        }
        (tmp / "peer_prepared.json").write_text(json.dumps(record, indent=2))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(json.dumps(record, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--ignore-eos", action="store_true")
    args = parser.parse_args()
    prepare(args.model_dir.resolve(), args.out_dir.resolve(), args.ignore_eos)


if __name__ == "__main__":
    main()

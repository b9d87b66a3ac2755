"""Writers of small GGUF files for tests (no weights)."""

from __future__ import annotations

from pathlib import Path

import gguf as gguf_lib
import numpy as np

TEMPLATE = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"


def write_gguf(path: Path, arch: str = "llama", tokens: list[str] | None = None, types: list[int] | None = None) -> Path:
    """A GGUF of a few hundred bytes: some llama-style metadata, a vocabulary and one tensor."""
    writer = gguf_lib.GGUFWriter(str(path), arch)
    writer.add_context_length(4096)
    writer.add_block_count(1)
    writer.add_tokenizer_model("gpt2")
    tokens = tokens or ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "H", "i", "Ġthere", "Ã©"]
    writer.add_token_list(tokens)
    writer.add_token_types(types or [3, 3, 3, 1, 1, 1, 1])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_chat_template(TEMPLATE)
    writer.add_tensor("token_embd.weight", np.zeros((len(tokens), 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path

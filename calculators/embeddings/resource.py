"""The embeddings side packet: the compiled model and its tokenizer, shared by every run.

The model runs in a thread (OpenVINO's inference releases the GIL, measured), one batch per
request: every input of a request goes through the device as one padded batch.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from calculators.llm.resource import check_device
from calculators.ov_infer import compile_ir, plugin_properties
from graphs import Options, ResourceContext
from graphs.errors import InvalidRequestError, UnavailableError

Pooling = Literal["CLS", "LAST", "LAST_TOKEN", "MEAN"]


class EmbeddingsOptions(Options):
    """OVMS's EmbeddingsCalculatorOVOptions."""

    models_path: str
    normalize_embeddings: bool = True
    target_device: str = "CPU"
    plugin_config: str = ""
    pooling: Pooling | None = None  # None: the model's sentence-transformers config, else CLS
    truncate: bool = False
    max_length: int | None = None


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


@dataclass
class EmbeddingsResource:
    options: EmbeddingsOptions
    model: Any  # PerThreadInfer over the compiled model
    tokenizer: Any  # openvino_genai.Tokenizer
    pooling: str
    max_length: int
    dimensions: int
    input_names: frozenset[str]
    vocab_size: int = 0

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        encoded = self.tokenizer.encode(texts, add_special_tokens=True)
        ids, mask = encoded.input_ids.data, encoded.attention_mask.data
        return [row[: int(m.sum())].tolist() for row, m in zip(ids, mask, strict=True)]

    def fit(self, batch: list[list[int]]) -> list[list[int]]:
        """Over-long inputs: cut (truncate option) or refuse; ids outside the vocabulary: refuse."""
        if self.vocab_size and any(t >= self.vocab_size for ids in batch for t in ids):
            raise InvalidRequestError(f"token ids out of the vocabulary (size {self.vocab_size})", param="input")
        too_long = [i for i, ids in enumerate(batch) if len(ids) > self.max_length]
        if too_long and not self.options.truncate:
            raise InvalidRequestError(
                f"input {too_long[0]} has {len(batch[too_long[0]])} tokens; this model takes at most {self.max_length} "
                "(the servable's truncate option would cut it)",
                param="input",
                code="context_length_exceeded",
            )
        return [ids[: self.max_length - 1] + ids[-1:] if len(ids) > self.max_length else ids for ids in batch]

    def _embed(self, batch: list[list[int]]) -> np.ndarray:
        width = max(len(ids) for ids in batch)
        ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, tokens in enumerate(batch):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        inputs = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            inputs["token_type_ids"] = np.zeros_like(ids)
        hidden = self.model.first_output(inputs)
        if self.pooling == "MEAN":
            weights = mask[:, :, None].astype(hidden.dtype)
            vectors = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        elif self.pooling in ("LAST", "LAST_TOKEN"):
            vectors = hidden[np.arange(len(batch)), mask.sum(axis=1) - 1]
        else:
            vectors = hidden[:, 0]
        if self.options.normalize_embeddings:
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors.astype(np.float32)

    async def embed(self, batch: list[list[int]]) -> np.ndarray:
        return await asyncio.to_thread(self._embed, batch)

    async def aclose(self) -> None:
        self.model = None


def _pooling(model_dir: Path, configured: str | None) -> str:
    if configured is not None:
        return configured
    pooling = _read_json(model_dir / "1_Pooling" / "config.json")
    if pooling.get("pooling_mode_mean_tokens"):
        return "MEAN"
    if pooling.get("pooling_mode_lasttoken"):
        return "LAST"
    return "CLS"


async def create_embeddings_resource(options: EmbeddingsOptions, ctx: ResourceContext) -> EmbeddingsResource:
    import openvino_genai as ov_genai

    model_dir = (ctx.base_path / options.models_path).resolve()
    if not (model_dir / "openvino_model.xml").is_file():
        raise UnavailableError(f"no OpenVINO model (openvino_model.xml) in {model_dir}")
    check_device(options.target_device)
    properties = plugin_properties(options.plugin_config)

    def load() -> EmbeddingsResource:
        compiled, names = compile_ir(model_dir, options.target_device, properties)
        tokenizer = ov_genai.Tokenizer(str(model_dir), INFERENCE_NUM_THREADS=1)
        config = _read_json(model_dir / "config.json")
        st_config = _read_json(model_dir / "sentence_bert_config.json")
        max_length = options.max_length or st_config.get("max_seq_length") or config.get("max_position_embeddings") or 512
        dimensions = int(config.get("hidden_size", 0))
        pooling = _pooling(model_dir, options.pooling)
        vocab = int(config.get("vocab_size", 0))
        return EmbeddingsResource(options, compiled, tokenizer, pooling, int(max_length), dimensions, names, vocab)

    return await asyncio.to_thread(load)

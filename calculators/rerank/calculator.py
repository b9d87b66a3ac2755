"""RerankCalculatorOV: a Cohere-style rerank request in, documents ranked by relevance out.

Registered under OVMS's name, with OVMS's tags and options, so an OVMS rerank graph.pbtxt
serves unchanged. The model is a cross-encoder (one logit per query-document pair); the
relevance score is its sigmoid, results sorted best first.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from pydantic import Field, ValidationError

from calculators.llm.resource import check_device
from calculators.openai.protocol import _Model, _Open
from calculators.openai.request_calculator import describe_validation_error
from calculators.ov_infer import compile_ir, plugin_properties
from calculators.packets import HttpRequestPayload, ResponseBody
from graphs import Calculator, Contract, InputSet, Options, ResourceContext, default_registry
from graphs.errors import InvalidRequestError, UnavailableError


class RerankOptions(Options):
    """OVMS's RerankCalculatorOVOptions."""

    models_path: str
    max_allowed_chunks: int = 10000
    max_length: int | None = None
    target_device: str = "CPU"
    plugin_config: str = ""


class TextDocument(_Open):
    text: str


class RerankRequest(_Model):
    model: str
    query: Annotated[str, Field(min_length=1)]
    documents: Annotated[list[str | TextDocument], Field(min_length=1)]
    top_n: Annotated[int, Field(ge=1)] | None = None
    return_documents: bool = False
    max_chunks_per_doc: int | None = None  # Cohere's; accepted, documents are not chunked here

    def texts(self) -> list[str]:
        return [d if isinstance(d, str) else d.text for d in self.documents]


@dataclass
class RerankResource:
    options: RerankOptions
    model: Any  # PerThreadInfer over the compiled model
    tokenizer: Any  # tokenizers.Tokenizer (pair encoding with the model's own template)
    max_length: int
    input_names: frozenset[str]

    def _scores(self, query: str, documents: list[str]) -> list[float]:
        encodings = self.tokenizer.encode_batch([(query, doc) for doc in documents])
        too_long = [i for i, e in enumerate(encodings) if len(e.ids) > self.max_length]
        if too_long:
            raise InvalidRequestError(
                f"query and document {too_long[0]} have {len(encodings[too_long[0]].ids)} tokens together; "
                f"this model takes at most {self.max_length}",
                param="documents",
            )
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
            types[row, : len(e.ids)] = e.type_ids
        inputs = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            inputs["token_type_ids"] = types
        logits = self.model.first_output(inputs).reshape(len(encodings), -1)[:, 0]
        return [float(x) for x in 1.0 / (1.0 + np.exp(-logits))]

    async def scores(self, query: str, documents: list[str]) -> list[float]:
        return await asyncio.to_thread(self._scores, query, documents)

    async def aclose(self) -> None:
        self.model = None


async def create_rerank_resource(options: RerankOptions, ctx: ResourceContext) -> RerankResource:
    from tokenizers import Tokenizer

    model_dir = (ctx.base_path / options.models_path).resolve()
    if not (model_dir / "openvino_model.xml").is_file() or not (model_dir / "tokenizer.json").is_file():
        raise UnavailableError(f"a rerank model needs openvino_model.xml and tokenizer.json in {model_dir}")
    check_device(options.target_device)
    properties = plugin_properties(options.plugin_config)

    def load() -> RerankResource:
        compiled, names = compile_ir(model_dir, options.target_device, properties)
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.no_truncation()
        config = json.loads((model_dir / "config.json").read_text()) if (model_dir / "config.json").is_file() else {}
        max_length = options.max_length or config.get("max_position_embeddings") or 512
        return RerankResource(options, compiled, tokenizer, int(max_length), names)

    return await asyncio.to_thread(load)


@default_registry.calculator("RerankCalculatorOV")
class RerankCalculator(Calculator):
    contract = Contract.of(
        inputs=("REQUEST_PAYLOAD",),
        outputs=("RESPONSE_PAYLOAD",),
        side_packets=("RERANK_NODE_RESOURCES",),
        options=RerankOptions,
        providers={"RERANK_NODE_RESOURCES": create_rerank_resource},
    )

    async def process(self, inputs: InputSet) -> None:
        payload: HttpRequestPayload = inputs["REQUEST_PAYLOAD"].value
        if payload.endpoint != "rerank":
            raise InvalidRequestError(f"this servable reranks documents; it does not serve {payload.endpoint}", param="model")
        try:
            request = RerankRequest.model_validate(payload.body)
        except ValidationError as exc:
            raise describe_validation_error(exc) from None
        resource: RerankResource = self.ctx.side_packets["RERANK_NODE_RESOURCES"]
        if len(request.documents) > resource.options.max_allowed_chunks:
            raise InvalidRequestError(
                f"{len(request.documents)} documents; this servable takes at most {resource.options.max_allowed_chunks}",
                param="documents",
            )
        scores = await resource.scores(request.query, request.texts())
        order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)[: request.top_n]
        results = []
        for index in order:
            result: dict[str, Any] = {"index": index, "relevance_score": scores[index]}
            if request.return_documents:
                document = request.documents[index]
                result["document"] = {"text": document} if isinstance(document, str) else document.model_dump()
            results.append(result)
        body = {"results": results, "model": request.model}
        self.ctx.emit("RESPONSE_PAYLOAD", ResponseBody(body), inputs.timestamp)

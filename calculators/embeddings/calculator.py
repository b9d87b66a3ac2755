"""EmbeddingsCalculatorOV: an OpenAI embeddings request in, the JSON answer out.

Registered under OVMS's name, with OVMS's tags, so an OVMS embeddings graph.pbtxt serves
unchanged:

    node { calculator: "EmbeddingsCalculatorOV"
           input_side_packet: "EMBEDDINGS_NODE_RESOURCES:embeddings_servable"
           input_stream: "REQUEST_PAYLOAD:input" output_stream: "RESPONSE_PAYLOAD:output"
           node_options { [type.googleapis.com/mediapipe.EmbeddingsCalculatorOVOptions] { models_path: "./" } } }
"""

from __future__ import annotations

import base64

from pydantic import ValidationError

from calculators.embeddings.protocol import EmbeddingsRequest
from calculators.embeddings.resource import EmbeddingsOptions, EmbeddingsResource, create_embeddings_resource
from calculators.openai.request_calculator import describe_validation_error
from calculators.packets import HttpRequestPayload, ResponseBody
from graphs import Calculator, Contract, InputSet, default_registry
from graphs.errors import InvalidRequestError


@default_registry.calculator("EmbeddingsCalculatorOV")
class EmbeddingsCalculator(Calculator):
    contract = Contract.of(
        inputs=("REQUEST_PAYLOAD",),
        outputs=("RESPONSE_PAYLOAD",),
        side_packets=("EMBEDDINGS_NODE_RESOURCES",),
        options=EmbeddingsOptions,
        providers={"EMBEDDINGS_NODE_RESOURCES": create_embeddings_resource},
    )

    async def process(self, inputs: InputSet) -> None:
        payload: HttpRequestPayload = inputs["REQUEST_PAYLOAD"].value
        if payload.endpoint != "embeddings":
            raise InvalidRequestError(f"this servable serves embeddings, not {payload.endpoint}", param="model")
        try:
            request = EmbeddingsRequest.model_validate(payload.body)
        except ValidationError as exc:
            raise describe_validation_error(exc) from None
        resource: EmbeddingsResource = self.ctx.side_packets["EMBEDDINGS_NODE_RESOURCES"]
        if request.dimensions is not None and request.dimensions != resource.dimensions:
            raise InvalidRequestError(
                f"this model gives {resource.dimensions}-dimensional embeddings and cannot shorten them", param="dimensions"
            )
        texts = request.texts()
        batch = resource.tokenize(texts) if texts is not None else request.token_ids() or []
        batch = resource.fit(batch)
        vectors = await resource.embed(batch)
        data = []
        for index, vector in enumerate(vectors):
            embedding: object = (
                base64.b64encode(vector.astype("<f4").tobytes()).decode() if request.encoding_format == "base64" else vector.tolist()
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(len(ids) for ids in batch)
        body = {"object": "list", "data": data, "model": request.model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        self.ctx.emit("RESPONSE_PAYLOAD", ResponseBody(body), inputs.timestamp)

"""ImageGenCalculator: an image generation or edit request in, OpenAI's images answer out.

Registered under OVMS's name, with OVMS's tags and options, so an OVMS image generation
graph.pbtxt serves unchanged:

    node { name: "ImageGenExecutor" calculator: "ImageGenCalculator"
           input_stream: "HTTP_REQUEST_PAYLOAD:input" output_stream: "HTTP_RESPONSE_PAYLOAD:output"
           input_side_packet: "IMAGE_GEN_NODE_RESOURCES:pipes"
           node_options { [type.googleapis.com/mediapipe.ImageGenCalculatorOptions] { models_path: "./" device: "CPU" } } }

The answer is `{"created", "data": [{"b64_json": <PNG>}], "output_format": "png", "size"}`.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from calculators.image.options import ImageGenOptions
from calculators.image.pixels import decode_mask, decode_upload
from calculators.image.request import ImageJob, parse_request
from calculators.image.resource import ImageGenResource, create_image_gen_resource
from calculators.llm.telemetry import TELEMETRY, RequestTelemetry
from calculators.openai.tolerance import IGNORED_FIELDS
from calculators.packets import HttpRequestPayload, ResponseBody
from graphs import Calculator, Contract, InputSet, default_registry
from graphs.errors import InvalidRequestError

_KINDS = {"images/generations": "generations", "images/edits": "edits"}


@default_registry.calculator("ImageGenCalculator")
class ImageGenCalculator(Calculator):
    contract = Contract.of(
        inputs=("HTTP_REQUEST_PAYLOAD",),
        outputs=("HTTP_RESPONSE_PAYLOAD",),
        side_packets=("IMAGE_GEN_NODE_RESOURCES",),
        options=ImageGenOptions,
        providers={"IMAGE_GEN_NODE_RESOURCES": create_image_gen_resource},
    )

    async def process(self, inputs: InputSet) -> None:
        payload: HttpRequestPayload = inputs["HTTP_REQUEST_PAYLOAD"].value
        kind = _KINDS.get(payload.endpoint)
        if kind is None:
            raise InvalidRequestError(
                f"this servable makes images (/images/generations, /images/edits), not {payload.endpoint}", param="model"
            )
        resource: ImageGenResource = self.ctx.side_packets["IMAGE_GEN_NODE_RESOURCES"]
        job = parse_request(kind, payload.body, resource.options, resource.multiple_of)  # type: ignore[arg-type]
        _check_prompts(job, resource.pipelines.text_encoders)
        ignored = self.ctx.request.get(IGNORED_FIELDS)
        if ignored is not None and job.ignored:
            ignored.add(job.ignored)
        image, mask, config = await self._inputs(job, resource)
        started = time.perf_counter_ns()
        outcome = await resource.generate(job.prompt, config, image, mask)
        ended = time.perf_counter_ns()
        steps = len(outcome.step_seconds)
        rate = steps / outcome.engine_seconds if outcome.engine_seconds > 0 else 0.0
        width, height = outcome.size
        args = {"images": len(outcome.images), "steps": steps, "steps_per_second": round(rate, 2), "width": width, "height": height}
        self.ctx.record_span("generate", started, ended, args)
        telemetry: RequestTelemetry | None = self.ctx.request.get(TELEMETRY)
        if telemetry is not None:
            telemetry.sink.images_generated(resource.servable_name, outcome.engine_seconds, outcome.step_seconds)
        body = {
            "created": int(time.time()),
            "data": [{"b64_json": base64.b64encode(png).decode("ascii")} for png in outcome.images],
            "output_format": "png",
            "size": f"{width}x{height}",
        }
        self.ctx.emit("HTTP_RESPONSE_PAYLOAD", ResponseBody(body), inputs.timestamp)

    async def _inputs(self, job: ImageJob, resource: ImageGenResource) -> tuple[Any, Any, dict[str, Any]]:
        """The edit's pixels (decoded off the loop) and the config with the image's size when
        the request gave none."""
        if job.image is None:
            return None, None, job.config
        if not resource.serves("edits"):
            raise InvalidRequestError("this model has no image-to-image pipeline: it only generates", param="image")
        if job.mask is not None and not resource.serves("inpainting"):
            raise InvalidRequestError("this model has no inpainting pipeline: send the image without a mask", param="mask")
        pixels = await resource.run_blocking(decode_upload, job.image.data, resource.max_pixels, "image")
        height, width = pixels.shape[:2]
        config = dict(job.config)
        if job.size is None:
            multiple = resource.multiple_of
            if width % multiple or height % multiple:
                raise InvalidRequestError(
                    f"image is {width}x{height}; its sides must be multiples of {multiple}, or give a size to resize it to", param="image"
                )
            config["width"], config["height"] = width, height
        mask = None
        if job.mask is not None:
            mask = await resource.run_blocking(decode_mask, job.mask.data, resource.max_pixels, (width, height))
        return pixels, mask, config


def _check_prompts(job: ImageJob, encoders: int) -> None:
    """prompt_2/_3 (and their negatives) feed a model's second and third text encoders: a model
    without them would fail in the engine."""
    for name, needs in (("prompt_2", 2), ("negative_prompt_2", 2), ("prompt_3", 3), ("negative_prompt_3", 3)):
        if name in job.config and encoders < needs:
            raise InvalidRequestError(
                f"{name}: this model has {encoders} text encoder{'s' if encoders > 1 else ''}, so no use for it", param=name
            )

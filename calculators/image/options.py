"""OVMS's ImageGenCalculatorOptions as a pydantic schema, and the resolutions they spell."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator

from graphs import Options
from graphs.proto import ovms_image_gen_pb2  # noqa: F401  (adds mediapipe.ImageGenCalculatorOptions for graph.pbtxt)

_SIZE = re.compile(r"^\s*(\d{1,6})\s*x\s*(\d{1,6})\s*$")


def parse_resolution(text: str) -> tuple[int, int]:
    """ "512x256" -> (512, 256) as (width, height); ValueError for anything else."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a resolution WIDTHxHEIGHT such as 512x512")
    width, height = int(match[1]), int(match[2])
    if width < 1 or height < 1:
        raise ValueError(f"{text!r}: width and height must be positive")
    return width, height


class LoraAdapter(Options):
    alias: str
    path: str
    alpha: float = 1.0


class CompositeLoraComponent(Options):
    adapter_alias: str
    weight: float = 1.0


class CompositeLoraAdapter(Options):
    alias: str
    components: list[CompositeLoraComponent] = []


class ImageGenOptions(Options):
    """The node's options, with OVMS's names and defaults."""

    models_path: str
    device: str = "CPU"
    plugin_config: str = ""
    max_resolution: str = "4096x4096"  # larger requests are refused
    default_resolution: str = ""  # none: the model's own (its UNet's sample size)
    max_num_images_per_prompt: Annotated[int, Field(ge=1)] = 10
    default_num_inference_steps: Annotated[int, Field(ge=1)] = 50
    max_num_inference_steps: Annotated[int, Field(ge=1)] = 100
    # Static shapes, compiled at load (OVMS: required on NPU). Requests must then match them.
    resolution: str = ""
    num_images_per_prompt: Annotated[int, Field(ge=0)] = 0
    guidance_scale: float | None = None
    lora_adapters: list[LoraAdapter] = []  # accepted in the schema; refused at load (not served yet)
    composite_lora_adapters: list[CompositeLoraAdapter] = []

    @field_validator("max_resolution", "default_resolution", "resolution")
    @classmethod
    def _resolution(cls, value: str) -> str:
        if value:
            parse_resolution(value)
        return value

    @property
    def max_size(self) -> tuple[int, int]:
        return parse_resolution(self.max_resolution)

    @property
    def default_size(self) -> tuple[int, int] | None:
        return parse_resolution(self.default_resolution) if self.default_resolution else None

    @property
    def static_size(self) -> tuple[int, int] | None:
        return parse_resolution(self.resolution) if self.resolution else None

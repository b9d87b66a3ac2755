"""The image generation side packet (`IMAGE_GEN_NODE_RESOURCES`): the servable's pipelines, run
one job at a time, off the event loop.

genai's image `generate()` releases the GIL while it denoises (measured: see NOTES "Issue 22
state"), so a job runs in this resource's own thread, not in a worker process; the event loop
keeps serving meanwhile. One job at a time: genai's image pipelines do not batch requests (one
call makes the n images of one prompt), so a second request waits, cancellable, for the first.
A cancelled job stops at its next denoising step (genai's step callback answers "stop").
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from calculators.image.engine import Outcome, Pipelines, load_pipelines, run_job
from calculators.image.options import ImageGenOptions
from calculators.llm.resource import check_device
from calculators.ov_infer import plugin_properties
from graphs import ResourceContext
from graphs.errors import UnavailableError

log = logging.getLogger("ovserve.calculators.image")


@dataclass
class ImageGenResource:
    options: ImageGenOptions
    pipelines: Pipelines
    servable_name: str = ""
    _executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="image-gen"))
    _turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    jobs_waiting: int = 0

    @property
    def multiple_of(self) -> int:
        return self.pipelines.multiple_of

    @property
    def max_pixels(self) -> int:
        """The most pixels an uploaded image may have: the max_resolution's area."""
        width, height = self.options.max_size
        return width * height

    def serves(self, what: str) -> bool:
        return {"edits": self.pipelines.image2image, "inpainting": self.pipelines.inpainting}.get(what, True) is not None

    async def run_blocking(self, work: Any, *args: Any) -> Any:
        """Blocking pre/post work (decoding uploads) on the event loop's default executor."""
        return await asyncio.get_running_loop().run_in_executor(None, work, *args)

    async def generate(
        self, prompt: str, config: dict[str, Any], image: np.ndarray | None = None, mask: np.ndarray | None = None
    ) -> Outcome:
        """Run one job when the engine is free. Cancelling the caller stops the job at its next
        step; the engine is released only once it has stopped."""
        self.jobs_waiting += 1
        try:
            await self._turn.acquire()
        finally:
            self.jobs_waiting -= 1
        try:
            stop = threading.Event()
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self._executor, run_job, self.pipelines, prompt, config, image, mask, stop.is_set)
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                stop.set()
                await asyncio.wait([future])  # the engine is free again before the next job starts
                if not future.exception():
                    steps = len(future.result().step_seconds)
                    wanted = config.get("num_inference_steps")
                    log.info(
                        "servable %s: generation cancelled, the engine stopped after %d of %s steps", self.servable_name, steps, wanted
                    )
                raise
        finally:
            self._turn.release()

    def stats(self) -> dict[str, Any]:
        return {"busy": self._turn.locked(), "waiting": self.jobs_waiting}

    async def aclose(self) -> None:
        async with self._turn:  # a job in flight finishes first
            self._executor.shutdown(wait=True)
            self.pipelines.close()


async def create_image_gen_resource(options: ImageGenOptions, ctx: ResourceContext) -> ImageGenResource:
    folder = (ctx.base_path / options.models_path).resolve()
    if not (folder / "model_index.json").is_file():
        raise UnavailableError(f"no diffusers model (model_index.json) in {folder}")
    if options.lora_adapters or options.composite_lora_adapters:
        raise UnavailableError("LoRA adapters on image generation are not served yet: remove lora_adapters from the node options")
    check_device(options.device)
    properties = plugin_properties(options.plugin_config)
    pipelines = await asyncio.to_thread(load_pipelines, Path(folder), options, properties)
    return ImageGenResource(options, pipelines, ctx.servable_name)

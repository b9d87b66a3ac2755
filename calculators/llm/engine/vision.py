"""What a vision-language engine needs beyond text, on both sides of the socket.

genai 2026.4's VLM pipelines (ContinuousBatchingPipeline on a VLM folder, VLMPipeline) take the
prompt as text plus `ov.Tensor` images (uint8, NHWC, one image each), never token ids: a token-id
request in a VLM continuous-batching pipeline fails the whole step ("Port for tensor name
input_ids was not found"). So the client sends `AddVision` (text, or token ids the worker decodes
for a caller that has no text), and the worker turns it into genai's arguments:

- the prompt is encoded by genai with special tokens (it adds them whenever its own chat template
  is off, which it must be: ours is already rendered), so a BOS the rendered text starts with is
  dropped here when the tokenizer adds one itself;
- each image's pixels are copied once into an `ov.Tensor` (genai needs its own writable memory;
  the view into the received frame is read-only).

`echo` is refused: genai 2026.4 crashes the worker on a VLM request with echo.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from calculators.llm.engine.protocol import AddVision, Image
from graphs.errors import InvalidRequestError


# -- the client's side ---------------------------------------------------------------------------
def vision_request(
    request_id: int,
    token_ids: list[int],
    config: dict[str, Any],
    prompt_text: str | None,
    images: Sequence[np.ndarray],
    model: str,
) -> AddVision:
    """The ADD_VISION message: checked images as views of the caller's arrays (no copy)."""
    if config.get("echo"):
        raise InvalidRequestError(f"echo is not supported for model {model!r}: a vision-language engine cannot echo", param="echo")
    return AddVision(request_id, prompt_text if prompt_text is not None else token_ids, [_image(i) for i in images], config, len(token_ids))


def _image(array: np.ndarray) -> Image:
    if not isinstance(array, np.ndarray) or array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        shape = getattr(array, "shape", None)
        raise ValueError(f"an image must be an RGB uint8 array of shape (height, width, 3), not {type(array).__name__} {shape}")
    height, width, _ = array.shape
    pixels: Any = np.ascontiguousarray(array)  # (a view when it already is)
    return Image(height, width, memoryview(pixels).cast("B"))


# -- the worker's side ---------------------------------------------------------------------------
class VisionInputs:
    """Turns an ADD_VISION into genai's (prompt, images) for one pipeline's tokenizer."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        # What genai's encode adds in front of any text (e.g. a Llama tokenizer's BOS), as text.
        added = tokenizer.encode("", add_special_tokens=True).input_ids.data[0].tolist()
        self.added_prefix = tokenizer.decode(added, skip_special_tokens=False) if added else ""

    def prompt(self, request: AddVision) -> str:
        prompt = request.prompt
        text = prompt if isinstance(prompt, str) else str(self.tokenizer.decode(prompt, skip_special_tokens=False))
        if self.added_prefix and text.startswith(self.added_prefix):
            text = text[len(self.added_prefix) :]  # genai adds it again
        return text

    @staticmethod
    def images(request: AddVision) -> list[Any]:
        """One uint8 (1, height, width, 3) ov.Tensor per image (ValueError for a bad one)."""
        import openvino as ov

        tensors = []
        for image in request.images:
            if image.height < 1 or image.width < 1 or len(image.data) != image.height * image.width * 3:
                raise ValueError(f"image of {image.height}x{image.width} pixels with {len(image.data)} bytes: RGB needs 3 bytes a pixel")
            pixels = np.frombuffer(image.data, dtype=np.uint8).reshape(1, image.height, image.width, 3)
            tensors.append(ov.Tensor(pixels))  # a copy: genai's own memory
        return tensors


def vision_config(config: Any) -> Any:
    """genai would render its chat template around our already rendered prompt: off."""
    config.apply_chat_template = False
    return config


def prompt_length(metrics_source: Any) -> int | None:
    """genai's prompt length (text plus image tokens) from a finished request's handle or a
    stateful result; None when it has none (e.g. a request that ended without generating)."""
    try:
        metrics = metrics_source.get_perf_metrics() if hasattr(metrics_source, "get_perf_metrics") else metrics_source.perf_metrics
        return int(metrics.get_num_input_tokens())
    except Exception:  # genai: "Perf metrics are not available until generation has completed"
        return None

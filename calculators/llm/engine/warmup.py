"""Warm a new continuous-batching pipeline up before it takes requests.

The first step at a new batch shape pays OpenVINO's one-time costs (memory for the larger
intermediate tensors, kernels for new shapes): measured on SmolLM2-135M, the first step of the
first burst of 8 chat requests took ~690 ms against ~330 ms once warm (docs/performance.md). A
few throw-away requests at load (one prompt, then a burst of 8) take those costs before the
server says it is ready; they cost ~1 s of load on SmolLM2 and leave nothing behind but cached
prefixes of their own prompts (distinct from any request's).
"""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger("ovserve.engine")

BURST = 8  # requests in the burst that warms the batched shapes
PROMPT_WORDS = 40  # about 80 tokens: a short chat request's prompt
NEW_TOKENS = 3  # enough steps to warm the decode shapes
IMAGE_SIDE = 224  # the warm-up image's pixels a side (processors resize to their own input size)


def warm_up(pipe: Any, ov_genai: Any, assisted: bool, vision: bool = False) -> float | None:
    """Run one request, then a burst of BURST, to their end; returns the seconds it took, or
    None when it failed (logged): the pipeline may then hold a broken request, so the caller
    builds a new one, and the first requests pay the costs. `assisted`: the pipeline has a draft
    model, whose requests must say how many tokens it proposes. `vision`: a vision-language
    pipeline (VLM_CB), which takes prompts as text: the first request also carries an image (the
    vision encoder's first-shape costs; the burst's language-model shapes are the same without)."""
    started = time.perf_counter()
    try:
        tokenizer = pipe.get_tokenizer()
        config = ov_genai.GenerationConfig(max_new_tokens=NEW_TOKENS, ignore_eos=True)
        if assisted:
            config.num_assistant_tokens = NEW_TOKENS
        if vision:
            config.apply_chat_template = False
        for batch in ([0], list(range(1, BURST + 1))):
            handles = []  # kept: genai drops a request whose handle is gone
            for number in batch:
                # A different start per prompt: no request reuses another's cached prefix.
                text = f"{number} warm-up " + " ".join(f"word{i}" for i in range(PROMPT_WORDS))
                if vision:
                    images = [_grey_image()] if number == 0 else []
                    handles.append(pipe.add_request(10**9 + number, text, images, config))
                else:
                    handles.append(pipe.add_request(10**9 + number, tokenizer.encode(text).input_ids, config))
            while pipe.has_non_finished_requests():
                pipe.step()
    except Exception:
        log.warning("engine warm-up failed; the first requests pay its costs", exc_info=True)
        return None
    return time.perf_counter() - started


def _grey_image() -> Any:
    import numpy as np
    import openvino as ov

    return ov.Tensor(np.full((1, IMAGE_SIDE, IMAGE_SIDE, 3), 128, dtype=np.uint8))

"""A vision-language servable as the graph loads it (the LLM side packet from the node's options)
and its LLM calculator run alone on a prompt with images: AUTO resolves to VLM_CB, VLM loads the
stateful pipeline, the calculator hands text and images to the engine, and the last packet's
prompt length counts the image tokens."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from calculators.llm.calculator import ContinuousBatchingLLMCalculator
from calculators.llm.options import LLMOptions
from calculators.llm.resource import LLMResource, create_llm_resource
from calculators.openai.protocol import ChatCompletionRequest
from calculators.packets import Generation, GenerationRequest, Prompt
from graphs.calculator import ResourceContext
from graphs.errors import InvalidRequestError
from graphs.testing import run_calculator

pytestmark = pytest.mark.asyncio(loop_scope="module")

RED = np.tile(np.array((220, 30, 30), dtype=np.uint8), (32, 32, 1))


class GivenLLM(ContinuousBatchingLLMCalculator):
    """The LLM calculator taking its `LLM` side packet as given (the servable's, built here)."""

    contract = dataclasses.replace(ContinuousBatchingLLMCalculator.contract, providers={})


@pytest_asyncio.fixture(loop_scope="module", scope="module", params=[None, "VLM"])
async def servable(request: pytest.FixtureRequest, tiny_vlm_dir: Path) -> AsyncIterator[LLMResource]:
    options = LLMOptions(models_path=tiny_vlm_dir.name, pipeline_type=request.param, num_kv_blocks=64, enable_prefix_caching=True)
    resource = await create_llm_resource(options, ResourceContext(tiny_vlm_dir.parent, "tiny-vlm", "llm"))
    yield resource
    await resource.aclose()


async def test_the_servable_runs_the_vision_engine(servable: LLMResource) -> None:
    expected = "VLM" if servable.options.pipeline_type == "VLM" else "VLM_CB"  # AUTO on CPU: VLM_CB
    assert servable.options.pipeline == expected and servable.engine.info["pipeline"] == expected
    assert servable.engine.vision and servable.options.stateful == (expected == "VLM")


def prompt_with(servable: LLMResource, config: dict[str, object]) -> Prompt:
    tokenizer = servable.tokenizer
    question = {"type": "text", "text": "What color is this image?"}
    text = tokenizer.render_chat([{"role": "user", "content": [{"type": "image"}, question]}])
    ids = tokenizer.encode(text, add_special_tokens=False)
    params = ChatCompletionRequest.model_validate({"model": "tiny-vlm", "messages": [{"role": "user", "content": "?"}]})
    request = GenerationRequest("chat/completions", params, "chatcmpl-1", 0)
    return Prompt(request, ids, 8, {"max_new_tokens": 8, "do_sample": False, **config}, text=text, images=(RED,))


async def test_the_calculator_sends_text_and_images(servable: LLMResource) -> None:
    prompt = prompt_with(servable, {})
    outputs = await run_calculator(GivenLLM, {"TOKENS": [prompt]}, options={"models_path": "."}, side_packets={"LLM": servable})
    generations: list[Generation] = [packet.value for packet in outputs["GENERATION"]]
    tokens = [token for generation in generations for delta in generation.deltas for token in delta.token_ids]
    assert tokens and generations[-1].deltas[-1].finish_reason in ("stop", "length")
    assert generations[0].prompt_tokens == len(prompt.token_ids)  # the caller's count until the engine's comes
    assert generations[-1].prompt_tokens > len(prompt.token_ids)  # the engine's: the image's tokens too


async def test_echo_is_refused_without_a_scoring_engine(servable: LLMResource) -> None:
    """A prefix-caching servable scores echoed prompts on a second engine; a vision one refuses
    echo instead (genai 2026.4 crashes on it), without starting that engine."""
    with pytest.raises(InvalidRequestError, match="echo"):
        await run_calculator(
            GivenLLM,
            {"TOKENS": [prompt_with(servable, {"echo": True, "logprobs": 1})]},
            options={"models_path": "."},
            side_packets={"LLM": servable},
        )
    assert not servable.scorer.started

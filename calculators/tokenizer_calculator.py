"""TokenizerCalculator: a validated request -> prompt token ids and engine settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from calculators.llm.chat_prompt import template_messages, template_tools
from calculators.llm.generation_config import engine_config, max_new_tokens
from calculators.llm.lora import ADAPTER_KEY, request_adapter
from calculators.llm.resource import LLMResource
from calculators.llm.telemetry import TELEMETRY, RequestTelemetry
from calculators.llm.vision_prompt import VisionChat, load_images, pixels, vision_chat
from calculators.media.access import DEFAULT_MAX_IMAGES_PER_REQUEST, MEDIA, MediaAccess
from calculators.openai.protocol import ChatCompletionRequest
from calculators.openai.support import check_images, check_pipeline, check_speculation
from calculators.packets import GenerationRequest, Prompt
from graphs import Calculator, Contract, InputSet, default_registry
from graphs.errors import InvalidRequestError

if TYPE_CHECKING:
    import numpy as np


@default_registry.calculator()
class TokenizerCalculator(Calculator):
    """Chat: renders the chat template (`chat_template.jinja` in the model folder wins over the
    tokenizer's own), then encodes without adding special tokens (the template has them).
    Completions: encodes the prompt with the tokenizer's special tokens.

    Example node:
        node { calculator: "TokenizerCalculator" input_stream: "REQUEST:request"
               output_stream: "TOKENS:prompt" input_side_packet: "LLM:llm" }
    """

    contract = Contract.of(inputs=("REQUEST",), outputs=("TOKENS",), side_packets=("LLM",))

    async def process(self, inputs: InputSet) -> None:
        request: GenerationRequest = inputs["REQUEST"].value
        llm: LLMResource = self.ctx.side_packets["LLM"]
        policy = llm.policy
        params = request.params
        check_pipeline(params, llm.options.pipeline)
        media: MediaAccess | None = self.ctx.request.get(MEDIA)
        chat: VisionChat | None = None
        text: str | None = None
        if isinstance(params, ChatCompletionRequest):
            check_images(params, vision=llm.vision is not None)

            def render(messages: list[dict[str, Any]]) -> str:
                kwargs = params.chat_template_kwargs or {}
                return llm.tokenizer.render_chat(messages, params.add_generation_prompt, template_tools(params), **kwargs)

            if llm.vision is not None:  # images where the user put them, checked before any is loaded
                max_images = media.max_images if media is not None else DEFAULT_MAX_IMAGES_PER_REQUEST
                chat = vision_chat(params.messages, llm.vision, render, max_images)
                text = chat.text
            else:
                text = render(template_messages(params.messages))
            policy.refuse_surely_too_long(text, "messages")
            token_ids = llm.tokenizer.encode(text, add_special_tokens=False)
        else:
            given = params.prompt_token_ids()
            if given is not None:
                if policy.context_length is not None and len(given) >= policy.context_length:  # before scanning them all
                    max_new_tokens(params, len(given), policy.context_length, llm.options.max_tokens_limit)
                size = len(llm.tokenizer.token_bytes.table) if llm.tokenizer.token_bytes else None
                if size is not None and any(t >= size for t in given):
                    raise InvalidRequestError(f"prompt token ids out of the vocabulary (size {size})", param="prompt")
                token_ids = given
            else:
                text = params.prompt_text() or ""
                policy.refuse_surely_too_long(text, "prompt")
                token_ids = llm.tokenizer.encode(text, add_special_tokens=True)
        if not token_ids:
            raise InvalidRequestError("the prompt is empty", param="prompt")
        image_tokens = chat.image_tokens if chat is not None else 0
        prompt_tokens = len(token_ids) + image_tokens  # (image tokens where known ahead)
        if (limit := policy.prompt_limit) is not None and prompt_tokens > limit:
            raise InvalidRequestError(
                f"the prompt has {prompt_tokens} tokens; this server takes at most {limit} (max_prompt_tokens)",
                param="messages" if isinstance(params, ChatCompletionRequest) else "prompt",
                code="context_length_exceeded",
            )
        new_tokens = max_new_tokens(params, prompt_tokens, policy.context_length, llm.options.max_tokens_limit)
        sampling = params.temperature > 0 if params.temperature is not None else llm.engine.info.get("do_sample", False)
        top = params.top_logprobs if isinstance(params, ChatCompletionRequest) else params.logprobs
        if top == 1 and sampling:  # the chosen token is the most likely one only when decoding greedily
            param = "top_logprobs" if isinstance(params, ChatCompletionRequest) else "logprobs"
            raise InvalidRequestError(f"{param} 1 needs greedy decoding (temperature 0); use 0 with sampling", param=param)
        if params.n > 1 and not sampling and params.beams == 1:
            raise InvalidRequestError("n > 1 needs sampling (temperature above 0) or beam search (best_of >= n)", param="n")
        limit = llm.options.best_of_limit
        if params.n > limit:
            raise InvalidRequestError(f"n is {params.n}; this servable allows at most {limit}", param="n")
        if params.beams > limit:
            param = "best_of" if params.best_of else "num_beams"
            raise InvalidRequestError(f"{param} is {params.beams}; this servable allows at most {limit} (best_of_limit)", param=param)
        speculation = policy.speculation
        check_speculation(params, speculation)
        config = engine_config(params, new_tokens, llm.options.tool_parser, speculation)
        if (adapter := request_adapter(params.model, llm.options)) is not None:  # "servable:adapter"
            config[ADAPTER_KEY] = adapter
        images: tuple[np.ndarray, ...] = ()
        if chat is not None and chat.images:  # last: a request refused above loads nothing
            images = await self._load(chat, media, llm.servable_name)
        vision_text = text if llm.vision is not None else None
        prompt = Prompt(request, token_ids, new_tokens, config, text=vision_text, images=images, image_tokens=image_tokens)
        self.ctx.emit("TOKENS", prompt, inputs.timestamp)

    async def _load(self, chat: VisionChat, media: MediaAccess | None, model: str) -> tuple[np.ndarray, ...]:
        """The request's images, each load a span in the run's trace and a metric observation."""
        loaded = await load_images(chat.images, media)
        for item in loaded:
            image = item.image
            height, width = image.pixels.shape[:2]
            args = {"source": image.source, "bytes": image.nbytes, "width": width, "height": height}
            self.ctx.record_span("image", item.start_ns, item.end_ns, {**args, "fetch_ms": image.fetch_ms, "decode_ms": image.decode_ms})
        telemetry: RequestTelemetry | None = self.ctx.request.get(TELEMETRY)
        if telemetry is not None:
            telemetry.sink.images_loaded(model, [item.seconds for item in loaded])
        return pixels(loaded)

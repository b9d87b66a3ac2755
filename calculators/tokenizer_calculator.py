"""TokenizerCalculator: a validated request -> prompt token ids and engine settings."""

from __future__ import annotations

from calculators.llm.chat_prompt import template_messages, template_tools
from calculators.llm.generation_config import engine_config, max_new_tokens
from calculators.llm.lora import ADAPTER_KEY, request_adapter
from calculators.llm.resource import LLMResource
from calculators.openai.protocol import ChatCompletionRequest
from calculators.openai.support import check_pipeline, check_speculation
from calculators.packets import GenerationRequest, Prompt
from graphs import Calculator, Contract, InputSet, default_registry
from graphs.errors import InvalidRequestError


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
        if isinstance(params, ChatCompletionRequest):
            text = llm.tokenizer.render_chat(
                template_messages(params.messages),
                add_generation_prompt=params.add_generation_prompt,
                tools=template_tools(params),
                **(params.chat_template_kwargs or {}),
            )
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
        if (limit := policy.prompt_limit) is not None and len(token_ids) > limit:
            raise InvalidRequestError(
                f"the prompt has {len(token_ids)} tokens; this server takes at most {limit} (max_prompt_tokens)",
                param="messages" if isinstance(params, ChatCompletionRequest) else "prompt",
                code="context_length_exceeded",
            )
        new_tokens = max_new_tokens(params, len(token_ids), policy.context_length, llm.options.max_tokens_limit)
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
        prompt = Prompt(request, token_ids, new_tokens, config)
        self.ctx.emit("TOKENS", prompt, inputs.timestamp)

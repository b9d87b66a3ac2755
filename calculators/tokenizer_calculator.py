"""TokenizerCalculator: a validated request -> prompt token ids and engine settings."""

from __future__ import annotations

from calculators.llm.generation_config import engine_config, max_new_tokens
from calculators.llm.resource import LLMResource
from calculators.openai.protocol import ChatCompletionRequest
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
        params = request.params
        if isinstance(params, ChatCompletionRequest):
            messages = [{"role": m.role, "content": m.text()} for m in params.messages]
            text = llm.tokenizer.render_chat(messages, add_generation_prompt=True)
            token_ids = llm.tokenizer.encode(text, add_special_tokens=False)
        else:
            token_ids = llm.tokenizer.encode(params.prompt_text(), add_special_tokens=True)
        if not token_ids:
            raise InvalidRequestError("the prompt is empty", param="prompt")
        new_tokens = max_new_tokens(params, len(token_ids), llm.context_length, llm.options.max_tokens_limit)
        sampling = params.temperature > 0 if params.temperature is not None else llm.engine.info.get("do_sample", False)
        if params.n > 1 and not sampling:
            raise InvalidRequestError("n > 1 needs sampling: set temperature above 0", param="n")
        if params.n > llm.options.best_of_limit:
            raise InvalidRequestError(f"n is {params.n}; this servable allows at most {llm.options.best_of_limit}", param="n")
        prompt = Prompt(request, token_ids, new_tokens, engine_config(params, new_tokens))
        self.ctx.emit("TOKENS", prompt, inputs.timestamp)

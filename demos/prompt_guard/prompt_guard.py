"""PromptGuardCalculator: refuses a request whose prompt matches a rule, before it is tokenized.

A user calculator (demo): loaded by `"calculator_modules": ["prompt_guard"]` in config.json, and
placed in the graph between the request and the tokenizer; every node after it reads its output,
so a refused request reaches none of them:

    node { name: "guard" calculator: "PromptGuardCalculator"
           input_stream: "REQUEST:request" output_stream: "REQUEST:guarded"
           input_side_packet: "LLM:llm"
           node_options { [type.googleapis.com/ovserve.PromptGuardCalculatorOptions] {
             rules { name: "no-secrets" pattern: "\\b(password|api[ _-]?key)\\b" }
             deny_substrings: "ignore previous instructions"
           } } }

What is checked: chat messages of the `roles` listed (default: user), their text however it is
sent (a string or `text` parts); completions' `prompt` (a string or a list of them; token ids are
decoded with the servable's tokenizer when the optional `LLM` side packet is bound, else refused).
A match raises InvalidRequestError (code `prompt_rejected`, param naming the message): the server
answers 400 in OpenAI's error shape, also for `stream: true` (nothing has been sent yet).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator

from calculators.openai.protocol import ChatCompletionRequest
from calculators.packets import GenerationRequest
from graphs import Calculator, Contract, InputSet, Options, default_registry
from graphs.errors import InvalidRequestError

Role = Literal["system", "developer", "user", "assistant", "tool"]


class Rule(Options):
    name: str  # named in the error message (the matched text is not echoed)
    pattern: str  # a Python regular expression, searched anywhere in each checked text

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return pattern


class PromptGuardOptions(Options):
    rules: list[Rule] = []
    deny_substrings: list[str] = []  # plain text; the rule's name is the substring itself
    ignore_case: bool = True
    roles: list[Role] = ["user"]  # chat messages whose content is checked (a completions prompt always is)
    max_prompt_chars: Annotated[int, Field(ge=1)] | None = None  # over all checked texts together


@default_registry.calculator()
class PromptGuardCalculator(Calculator):
    """Passes a request on unchanged (same timestamp) or refuses it with a 400.

    Example node: see the module's doc.
    """

    inline = True  # pure computation per packet: runs in the sender's turn
    contract = Contract.of(inputs=("REQUEST",), outputs=("REQUEST",), side_packets=("LLM",), optional=("LLM",), options=PromptGuardOptions)

    async def open(self) -> None:
        options: PromptGuardOptions = self.ctx.options
        flags = re.IGNORECASE if options.ignore_case else 0
        self._checks = [(rule.name, re.compile(rule.pattern, flags)) for rule in options.rules]
        self._checks += [(text, re.compile(re.escape(text), flags)) for text in options.deny_substrings if text]

    async def process(self, inputs: InputSet) -> None:
        request: GenerationRequest = inputs["REQUEST"].value
        total = 0
        for param, text in self._texts(request):
            total += len(text)
            for name, pattern in self._checks:
                if pattern.search(text):
                    raise InvalidRequestError(f"the prompt was refused by rule {name!r}", param=param, code="prompt_rejected")
        limit = self.ctx.options.max_prompt_chars
        if limit is not None and total > limit:
            raise InvalidRequestError(
                f"the prompt was refused by rule 'max_prompt_chars': {total} characters, at most {limit}",
                param="messages" if isinstance(request.params, ChatCompletionRequest) else "prompt",
                code="prompt_rejected",
            )
        self.ctx.emit("REQUEST", request, inputs.timestamp)

    def _texts(self, request: GenerationRequest) -> list[tuple[str, str]]:
        """(param, text) of everything checked."""
        params = request.params
        if isinstance(params, ChatCompletionRequest):
            roles = self.ctx.options.roles
            return [(f"messages.{i}.content", m.text()) for i, m in enumerate(params.messages) if m.role in roles]
        text = params.prompt_text()
        if text is not None:  # one prompt (the request calculator refuses batches of them)
            return [("prompt.0" if isinstance(params.prompt, list) else "prompt", text)]
        ids = params.prompt_token_ids() or []
        llm = self.ctx.side_packets.get("LLM")
        if llm is None:
            raise InvalidRequestError(
                "a prompt of token ids cannot be checked by the prompt guard here; send text",
                param="prompt",
                code="prompt_rejected",
            )
        return [("prompt", llm.tokenizer.decode(ids, skip_special_tokens=False))]

"""What a servable takes as a prompt: its context length and prompt limit, its speculative decoding,
and the 400s for a prompt beyond them. Worked out once per servable from its load-time options;
applied by the TokenizerCalculator (every chat and completion request) and `/v3/tokenize`."""

from __future__ import annotations

from dataclasses import dataclass

from calculators.llm.options import LLMOptions, Speculation
from calculators.llm.vocab import TokenBytes
from calculators.ov_infer import plugin_properties
from graphs.errors import InvalidRequestError, UnavailableError

# genai's stateful pipeline on NPU compiles the model for prompts up to MAX_PROMPT_LEN tokens
# (plugin_config; genai's default below): longer prompts are refused with a 400 before the engine.
NPU_DEFAULT_MAX_PROMPT_LEN = 1024


@dataclass(frozen=True)
class PromptPolicy:
    context_length: int | None
    # The most prompt tokens a request may bring, if below the context (None: only the context bounds it).
    prompt_limit: int | None
    speculation: Speculation | None
    vocab: TokenBytes | None  # for the cheap refusal before encoding

    @classmethod
    def of(cls, options: LLMOptions, context_length: int | None, vocab: TokenBytes | None) -> PromptPolicy:
        return cls(context_length, prompt_limit(options, context_length), options.speculation(), vocab)

    def check_prompt_tokens(self, count: int, param: str, at_least: bool = False) -> None:
        check_prompt_tokens(count, self.prompt_limit, self.context_length, param, at_least)

    def refuse_surely_too_long(self, text: str, param: str) -> None:
        """A 400 for a text that cannot fit in the context, before it is encoded: encoding holds the
        GIL (about 2.4 s for 15 MB), so a few huge prompts would stall the whole server, health
        checks included. No token covers more than `longest` bytes and a character is at least one
        byte, so the text has at least len(text) / longest tokens; the factor 2 leaves room for
        normalizers that merge characters."""
        vocab = self.vocab
        if vocab is None or not vocab.longest or (self.context_length is None and self.prompt_limit is None):
            return
        self.check_prompt_tokens(len(text) // (2 * vocab.longest), param, at_least=True)


def prompt_limit(options: LLMOptions, context_length: int | None) -> int | None:
    """The node's max_prompt_tokens (or the NPU's limit, the lower one) if set and below the
    context (a prompt must leave room for one new token), else none beyond the context."""
    limit = options.max_prompt_tokens or None
    npu_limit = npu_prompt_limit(options)
    if npu_limit is not None and (limit is None or npu_limit < limit):
        limit = npu_limit
    if context_length is not None and (limit is None or limit >= context_length):
        return None
    return limit


def npu_prompt_limit(options: LLMOptions) -> int | None:
    """The prompt limit the NPU's stateful pipeline sets (None elsewhere)."""
    if not options.stateful or options.device.split(".")[0] != "NPU":
        return None
    try:
        value = plugin_properties(options.plugin_config).get("MAX_PROMPT_LEN", NPU_DEFAULT_MAX_PROMPT_LEN)
        return int(value)  # type: ignore[call-overload]
    except (UnavailableError, TypeError, ValueError):
        return NPU_DEFAULT_MAX_PROMPT_LEN  # the load reports a bad plugin_config


def check_prompt_tokens(count: int, limit: int | None, context_length: int | None, param: str, at_least: bool = False) -> None:
    """The bounds chat puts on a prompt (TokenizerCalculator, max_new_tokens), also for /tokenize:
    a prompt chat would refuse is a 400 there too, not a count (nor megabytes of ids).
    `at_least`: `count` is a lower bound worked out before encoding."""
    if limit is not None and count > limit:
        why = f"this server takes at most {limit} (max_prompt_tokens)"
    elif context_length is not None and count >= context_length:
        why = f"this model's context length is {context_length} tokens"
    else:
        return
    has = f"at least {count}" if at_least else str(count)
    raise InvalidRequestError(f"the prompt has {has} tokens; {why}", param=param, code="context_length_exceeded")

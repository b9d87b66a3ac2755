"""What a request may combine: every field we parse but cannot honour in some combination is
refused here with a 400 that says what is not supported (never silently ignored)."""

from __future__ import annotations

from calculators.llm.options import Speculation
from calculators.openai.protocol import ChatCompletionRequest, CompletionRequest
from calculators.openai.schema_check import check_schema
from graphs.errors import InvalidRequestError


def check_supported(params: ChatCompletionRequest | CompletionRequest) -> None:
    if params.stream_options is not None and not params.stream:
        raise InvalidRequestError("stream_options is only allowed when stream is true", param="stream_options")
    if params.logit_bias:
        raise InvalidRequestError("logit_bias is not supported: the engine has no per-token bias", param="logit_bias")
    if params.beams > 1:
        param = "best_of" if params.best_of else "num_beams"
        if params.stream:
            raise InvalidRequestError(f"{param} > 1 (beam search) cannot stream: the beams are ranked at the end", param=param)
        if params.beams < params.n:
            raise InvalidRequestError(f"{param} ({params.beams}) must be at least n ({params.n})", param=param)
        if params.temperature is not None and params.temperature > 0:
            raise InvalidRequestError(f"{param} > 1 is beam search; it does not combine with sampling (temperature > 0)", param=param)
    if params.response_format is not None:
        fmt = params.response_format
        if fmt.type == "json_schema" and (fmt.json_schema is None or fmt.json_schema.json_schema is None):
            raise InvalidRequestError("response_format json_schema needs json_schema.schema", param="response_format.json_schema")
        if fmt.type == "json_schema" and fmt.json_schema is not None:
            check_schema(fmt.json_schema.json_schema, "response_format.json_schema.schema")
    if isinstance(params, ChatCompletionRequest):
        _check_chat(params)
    else:
        _check_completion(params)


def check_speculation(params: ChatCompletionRequest | CompletionRequest, speculation: Speculation | None) -> None:
    """The speculative decoding fields against what the servable does (a draft model, prompt
    lookup, or neither). genai 2026.4 proposes tokens ahead for one sequence only."""
    fields = {
        "num_assistant_tokens": params.num_assistant_tokens,
        "assistant_confidence_threshold": params.assistant_confidence_threshold,
        "max_ngram_size": params.max_ngram_size,
    }
    given = [name for name, value in fields.items() if value is not None]
    if speculation is None:
        if given:
            raise InvalidRequestError(
                f"{given[0]} needs a servable with speculative decoding: a draft model (draft_models_path) "
                'or prompt lookup (plugin_config {"prompt_lookup": true}); this one has neither',
                param=given[0],
            )
        return
    kind = "a draft model" if speculation.kind == "draft" else "prompt lookup"
    if speculation.kind == "draft" and params.max_ngram_size is not None:
        raise InvalidRequestError("max_ngram_size is for prompt lookup; this servable has a draft model", param="max_ngram_size")
    if speculation.kind == "prompt_lookup" and params.assistant_confidence_threshold is not None:
        raise InvalidRequestError(
            "assistant_confidence_threshold needs a draft model; this servable does prompt lookup (use num_assistant_tokens)",
            param="assistant_confidence_threshold",
        )
    if params.num_assistant_tokens is not None and params.assistant_confidence_threshold is not None:
        raise InvalidRequestError(
            "num_assistant_tokens and assistant_confidence_threshold do not combine: give one", param="assistant_confidence_threshold"
        )
    if params.n > 1:
        raise InvalidRequestError(
            f"n > 1 is not supported: this servable decodes speculatively ({kind}), one sequence per request", param="n"
        )
    if params.beams > 1:
        param = "best_of" if params.best_of else "num_beams"
        raise InvalidRequestError(f"{param} > 1 (beam search) is not supported: this servable decodes speculatively ({kind})", param=param)


def _check_chat(params: ChatCompletionRequest) -> None:
    if params.top_logprobs is not None and params.top_logprobs > 1:
        raise InvalidRequestError(
            "top_logprobs above 1 is not supported: the engine reports the log-probability of the chosen token only",
            param="top_logprobs",
        )
    if params.top_logprobs is not None and not params.logprobs:
        raise InvalidRequestError("top_logprobs needs logprobs: true", param="top_logprobs")
    if params.logprobs and params.beams > 1:
        raise InvalidRequestError("logprobs with beam search is not supported", param="logprobs")
    for index, message in enumerate(params.messages):
        if message.has_images() and message.role != "user":
            raise InvalidRequestError(
                f"image_url content parts go in user messages, not in a {message.role} message", param=f"messages.{index}.content"
            )
        if message.role == "tool" and not message.tool_call_id:
            raise InvalidRequestError("a tool message needs tool_call_id", param=f"messages.{index}.tool_call_id")
    choice = params.tool_choice
    if choice is not None and choice != "none" and not params.tools:
        raise InvalidRequestError("tool_choice needs tools", param="tool_choice")
    if choice is not None and not isinstance(choice, str):
        names = [tool.function.name for tool in params.tools or []]
        if choice.function.name not in names:
            raise InvalidRequestError(f"tool_choice names {choice.function.name!r}, which is not among the tools", param="tool_choice")
    if choice is not None and choice not in ("none", "auto"):  # a forced call: the tools' parameters become a grammar
        for index, tool in enumerate(params.tools or []):
            if tool.function.parameters is not None and (isinstance(choice, str) or tool.function.name == choice.function.name):
                check_schema(tool.function.parameters, f"tools.{index}.function.parameters")
    if params.tools and params.response_format is not None and params.response_format.type != "text":
        if choice not in (None, "none"):
            raise InvalidRequestError("response_format does not combine with tools", param="response_format")


def check_images(params: ChatCompletionRequest, vision: bool) -> None:
    """image_url parts are for a vision-language servable; a text-only one refuses them (the
    servable is known only after the request calculator, so its TokenizerCalculator asks)."""
    if vision:
        return
    for index, message in enumerate(params.messages):
        if message.has_images():
            raise InvalidRequestError(
                "image_url content parts need a vision model; this model takes text only", param=f"messages.{index}.content"
            )


def _check_completion(params: CompletionRequest) -> None:
    if params.logprobs is not None and params.logprobs > 1:
        raise InvalidRequestError(
            "logprobs above 1 is not supported: the engine reports the log-probability of the chosen token only", param="logprobs"
        )
    if params.logprobs is not None and params.beams > 1:
        raise InvalidRequestError("logprobs with beam search is not supported", param="logprobs")
    if isinstance(params.prompt, list) and len(params.prompt) > 1 and not isinstance(params.prompt[0], int):
        raise InvalidRequestError("one prompt per request: send a string, a list of one string, or token ids", param="prompt")
    if isinstance(params.prompt, list) and not params.prompt:
        raise InvalidRequestError("the prompt is empty", param="prompt")
    if params.suffix:
        raise InvalidRequestError("suffix (fill-in-the-middle) is not supported", param="suffix")
    if params.max_tokens == 0 and not (params.echo and params.wants_logprobs):
        # genai takes max_new_tokens 0 only with echo, which it does with logprobs
        raise InvalidRequestError("max_tokens 0 (scoring the prompt) needs echo: true and logprobs", param="max_tokens")


# What the stateful pipeline (pipeline_type LM, openvino_genai.LLMPipeline) cannot serve here.
_LM = "this servable runs pipeline_type LM (the stateful LLMPipeline, one request at a time)"


def check_pipeline(params: ChatCompletionRequest | CompletionRequest, pipeline: str) -> None:
    """Refuse what the servable's engine cannot do. genai 2026.4's stateful LLMPipeline streams
    (and so can be cancelled) only one greedy or sampled sequence, reports one score per sequence
    rather than per-token log-probabilities, and has no echo."""
    if pipeline not in ("LM", "VLM"):  # VLM: the stateful VLMPipeline, alike here
        return
    if params.n > 1:
        raise InvalidRequestError(f"n > 1 is not supported: {_LM}; use pipeline_type LM_CB for several choices", param="n")
    if params.beams > 1:
        param = "best_of" if params.best_of else "num_beams"
        raise InvalidRequestError(f"{param} > 1 (beam search) is not supported: {_LM}; use pipeline_type LM_CB", param=param)
    if params.wants_logprobs:
        raise InvalidRequestError(f"logprobs are not supported: {_LM}, which reports no per-token log-probabilities", param="logprobs")
    if isinstance(params, CompletionRequest) and params.echo:
        raise InvalidRequestError(f"echo is not supported: {_LM}", param="echo")

"""The chat format of the locally made Qwen2-style models (tiny, tiny-draft, synthetic).

Special and added tokens, the Qwen2.5-style chat template (:data:`CHAT_TEMPLATE`: tools, tool
calls and tool results, ``enable_thinking``), rendering it as the server does, and the Qwen2
building blocks every such model shares: a byte-level BPE tokenizer trained with ``tokenizers``,
the model config, saving the Hugging Face folder and exporting it to OpenVINO IR through the
product's own export (:func:`serving.repository.export.optimum_export`).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

logger = logging.getLogger("tests.models.chat")

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END]

TOOL_CALL_START = "<tool_call>"
TOOL_CALL_END = "</tool_call>"
THINK_START = "<think>"
THINK_END = "</think>"
#: Added to the vocabulary as single tokens, but NOT special: they survive skip_special_tokens
#: (as in Qwen2.5 / Qwen3), so the tool and reasoning parsers see them in the text.
ADDED_TOKENS = [TOOL_CALL_START, TOOL_CALL_END, THINK_START, THINK_END]

#: Qwen2.5-style chat template (our own text), with Qwen3's ``enable_thinking`` switch.
#:
#: * ``tools``: a system turn lists each tool as JSON (``tojson``) inside ``<tools></tools>``
#:   and asks for ``<tool_call>`` JSON; a first system/developer message is put in front of it.
#: * assistant ``tool_calls`` become ``<tool_call>\n{"name": ..., "arguments": ...}\n</tool_call>``
#:   blocks (``arguments`` as given when it is a string, else ``tojson``); a ``</think>`` block
#:   in assistant content is dropped from history, as Qwen3 does.
#: * ``tool`` messages: ``<tool_response>`` blocks inside one user turn per run of tool messages.
#: * ``enable_thinking=false``: the generation prompt ends with an empty think block.
#: * no default system prompt: a plain conversation renders exactly as ChatML.
#: Content may be a string, null, or a list of ``{"type": "text", "text": ...}`` parts (joined).
CHAT_TEMPLATE = r"""{%- macro text(content) %}
    {%- if content is string %}
        {{- content }}
    {%- elif content %}
        {{- content | selectattr('type', 'equalto', 'text') | map(attribute='text') | join('') }}
    {%- endif %}
{%- endmacro %}
{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role in ['system', 'developer'] %}
        {{- text(messages[0].content) + '\n\n' }}
    {%- endif %}
    {{- '# Tools\n\nYou may call one or more functions to help with the user query.\n\n' }}
    {{- 'The function signatures are listed within <tools></tools> XML tags:\n<tools>' }}
    {%- for tool in tools %}
        {{- '\n' + (tool | tojson) }}
    {%- endfor %}
    {{- '\n</tools>\n\nFor each function call, return a JSON object with the function name and arguments ' }}
    {{- 'within <tool_call></tool_call> XML tags:\n' }}
    {{- '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' }}
{%- elif messages[0].role in ['system', 'developer'] %}
    {{- '<|im_start|>system\n' + text(messages[0].content) + '<|im_end|>\n' }}
{%- endif %}
{%- for message in messages %}
    {%- set content = text(message.content) %}
    {%- if message.role in ['system', 'developer'] %}
        {%- if not loop.first %}
            {{- '<|im_start|>system\n' + content + '<|im_end|>\n' }}
        {%- endif %}
    {%- elif message.role == 'user' %}
        {{- '<|im_start|>user\n' + content + '<|im_end|>\n' }}
    {%- elif message.role == 'assistant' %}
        {%- if '</think>' in content %}
            {%- set content = (content.split('</think>') | last).lstrip('\n') %}
        {%- endif %}
        {{- '<|im_start|>assistant\n' + content }}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- set call = tool_call.function if tool_call.function is defined else tool_call %}
                {%- if content or not loop.first %}
                    {{- '\n' }}
                {%- endif %}
                {{- '<tool_call>\n{"name": "' + call.name + '", "arguments": ' }}
                {%- if call.arguments is string %}
                    {{- call.arguments }}
                {%- else %}
                    {{- call.arguments | tojson }}
                {%- endif %}
                {{- '}\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == 'tool' %}
        {%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' + content + '\n</tool_response>' }}
        {%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- else %}
        {{- raise_exception('unsupported role: ' + message.role) }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking == false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %}
"""


def tool_call_text(call: dict[str, Any]) -> str:
    """One hermes-format tool call as the model writes it (and the template renders it)."""
    return f"{TOOL_CALL_START}\n{json.dumps(call, ensure_ascii=False)}\n{TOOL_CALL_END}"


def render_chat_prompt(
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    add_generation_prompt: bool = True,
    **template_kwargs: Any,
) -> str:
    """:data:`CHAT_TEMPLATE` rendered exactly as the server renders it (its jinja environment)."""
    from calculators.llm.model_files import _template_env

    template = _template_env().from_string(CHAT_TEMPLATE)
    return template.render(
        messages=messages,
        tools=tools,
        add_generation_prompt=add_generation_prompt,
        bos_token=ENDOFTEXT,
        eos_token=IM_END,
        **template_kwargs,
    )


def train_tokenizer(corpus: list[str], spec: dict[str, Any]) -> Any:
    """A byte-level BPE tokenizer wrapped as transformers' PreTrainedTokenizerFast."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec["vocab_size"],
        min_frequency=spec["min_frequency"],
        special_tokens=list(spec["special_tokens"]),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in spec.get("added_tokens", [])])
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        additional_special_tokens=[IM_START],
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
    )
    hf_tok.chat_template = CHAT_TEMPLATE
    return hf_tok


def qwen2_config(spec: dict[str, Any], hf_tok: Any) -> Any:
    from transformers import Qwen2Config

    endoftext = hf_tok.convert_tokens_to_ids(ENDOFTEXT)
    # transformers 5 writes rope_parameters (no rope_theta); 10000 is also transformers 4's default
    kwargs: dict[str, Any] = {
        "vocab_size": len(hf_tok),
        "hidden_size": spec["hidden_size"],
        "intermediate_size": spec["intermediate_size"],
        "num_hidden_layers": spec["num_hidden_layers"],
        "num_attention_heads": spec["num_attention_heads"],
        "num_key_value_heads": spec["num_key_value_heads"],
        "max_position_embeddings": spec["max_position_embeddings"],
        "rope_parameters": {"rope_type": "default", "rope_theta": spec["rope_theta"]},
        "tie_word_embeddings": spec["tie_word_embeddings"],
        "use_sliding_window": False,
        "sliding_window": None,
        "bos_token_id": endoftext,  # as Qwen2: the tokenizer itself adds no BOS
        "eos_token_id": hf_tok.convert_tokens_to_ids(IM_END),
        "pad_token_id": endoftext,
    }
    return Qwen2Config(**kwargs)


def save_hf(model: Any, hf_tok: Any, hf_dir: Path) -> None:
    from transformers import GenerationConfig

    model.generation_config = GenerationConfig(
        bos_token_id=model.config.bos_token_id,
        eos_token_id=model.config.eos_token_id,
        pad_token_id=model.config.pad_token_id,
        do_sample=False,
    )
    model.save_pretrained(hf_dir, safe_serialization=True)
    hf_tok.save_pretrained(hf_dir)
    write_tokenizer_files(hf_dir)


def write_tokenizer_files(folder: Path) -> None:
    """chat_template.jinja plus a tokenizer_config.json both transformers 4 and 5 read.

    transformers 5 writes ``tokenizer_class: TokenizersBackend`` and a list-valued
    ``extra_special_tokens`` that transformers 4 cannot load; peers in other virtualenvs read
    this folder too, and some read the chat template from ``tokenizer_config.json`` only.
    """
    (folder / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": IM_END,
        "pad_token": ENDOFTEXT,
        "additional_special_tokens": [IM_START],
        "model_max_length": 32768,
        "clean_up_tokenization_spaces": False,
        "padding_side": "left",
        "chat_template": CHAT_TEMPLATE,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def export_lm(hf_dir: Path, out: Path) -> None:
    """The product's export (fp32, uncompressed; openvino_tokenizers with a detokenizer), then our
    own tokenizer files (chat template, a tokenizer_config.json both transformers 4 and 5 read)."""
    from serving.repository.export import convert_tokenizer, optimum_export

    optimum_export(hf_dir, out, "text-generation-with-past", "fp32", logger.debug)
    convert_tokenizer(hf_dir, out, with_detokenizer=True)
    # optimum saves tokenizer files and configs beside the IR; make sure of the ones we rely on
    for name in ("tokenizer.json", "tokenizer_config.json", "config.json", "generation_config.json", "special_tokens_map.json"):
        if not (out / name).exists() and (hf_dir / name).exists():
            shutil.copy2(hf_dir / name, out / name)
    write_tokenizer_files(out)
    for name in (
        "openvino_model.xml",
        "openvino_model.bin",
        "openvino_tokenizer.xml",
        "openvino_detokenizer.xml",
        "config.json",
        "tokenizer.json",
    ):
        if not (out / name).is_file():
            raise RuntimeError(f"export did not produce {name} in {out}")

"""The tiny trained chat model (tests/models/tiny.py): files, exact answers, chat template, CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openvino_genai
import pytest

from calculators.llm.model_files import ModelTokenizer
from calculators.llm.vocab import load_token_bytes
from tests.models import (
    ADDED_TOKENS,
    SPECIAL_TOKENS,
    TINY_CHAT_CASES,
    TINY_COMPLETIONS,
    TINY_JSON_ANSWER,
    TINY_JSON_PROMPT,
    TINY_PROMPTS,
    TINY_THINK_ANSWER,
    TINY_THINK_OUTPUT,
    TINY_THINK_PROMPT,
    TINY_THINK_REASONING,
    TINY_TOOL_CALL,
    TINY_TOOL_CALL_OUTPUT,
    TINY_TOOL_FOLLOWUP_ANSWER,
    TINY_TOOL_PROMPT,
    TINY_TOOL_RESULT,
    TINY_TOOLS,
    render_chat_prompt,
    tiny_tool_followup_messages,
)
from tests.models.__main__ import main


@pytest.fixture(scope="module")
def pipeline(tiny_model_dir: Path) -> openvino_genai.ContinuousBatchingPipeline:
    scheduler = openvino_genai.SchedulerConfig()
    scheduler.cache_size = 0
    return openvino_genai.ContinuousBatchingPipeline(str(tiny_model_dir), scheduler, "CPU")


def _greedy(max_new_tokens: int = 200) -> openvino_genai.GenerationConfig:
    config = openvino_genai.GenerationConfig()
    config.max_new_tokens = max_new_tokens
    config.do_sample = False
    return config


def _generate(pipeline: openvino_genai.ContinuousBatchingPipeline, prompt: str, max_new_tokens: int = 80) -> tuple[str, list[int]]:
    """Greedy text (special tokens skipped, as the server's default) and ids for a rendered prompt,
    tokenized explicitly the way the server does it."""
    tok = pipeline.get_tokenizer()
    ids = tok.encode(prompt, add_special_tokens=False).input_ids
    result = pipeline.generate([ids], [_greedy(max_new_tokens)])[0]
    generated = [int(t) for t in result.m_generation_ids[0]]
    return tok.decode(generated, skip_special_tokens=True), generated


# --------------------------------------------------------------------------- the tiny model


def test_expected_files(tiny_model_dir: Path) -> None:
    for name in (
        "openvino_model.xml",
        "openvino_model.bin",
        "openvino_tokenizer.xml",
        "openvino_detokenizer.xml",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "hf/config.json",
        "hf/model.safetensors",
        "hf/tokenizer.json",
        "hf/chat_template.jinja",
    ):
        assert (tiny_model_dir / name).is_file(), name


def test_config_declares_context_and_eos(tiny_model_dir: Path) -> None:
    tokenizer = json.loads((tiny_model_dir / "tokenizer.json").read_text())
    im_end = next(t["id"] for t in tokenizer["added_tokens"] if t["content"] == "<|im_end|>")
    config = json.loads((tiny_model_dir / "config.json").read_text())
    generation = json.loads((tiny_model_dir / "generation_config.json").read_text())
    assert config["architectures"] == ["Qwen2ForCausalLM"]
    assert config["max_position_embeddings"] == 512
    assert config["eos_token_id"] == generation["eos_token_id"] == im_end
    tok_config = json.loads((tiny_model_dir / "tokenizer_config.json").read_text())
    assert tok_config["chat_template"] == (tiny_model_dir / "chat_template.jinja").read_text()
    assert openvino_genai.Tokenizer(str(tiny_model_dir)).get_eos_token_id() == im_end


def test_weights_are_not_compressed(tiny_model_dir: Path) -> None:
    import openvino as ov

    model = ov.Core().read_model(tiny_model_dir / "openvino_model.xml")
    types = {op.get_element_type().get_type_name() for op in model.get_ops() if op.get_type_name() == "Constant" and len(op.shape) == 2}
    assert types == {"f32"}


def test_chat_prompts_reproduce_exactly(
    pipeline: openvino_genai.ContinuousBatchingPipeline,
) -> None:
    tok = pipeline.get_tokenizer()
    prompts = [tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True) for q in TINY_PROMPTS]
    config = _greedy()
    config.apply_chat_template = False  # already rendered (the default would render it twice)
    results = pipeline.generate(prompts, [config] * len(prompts))
    assert [r.m_generation_ids[0] for r in results] == list(TINY_PROMPTS.values())


def test_string_prompts_get_the_chat_template_by_default(
    pipeline: openvino_genai.ContinuousBatchingPipeline,
) -> None:
    questions = list(TINY_PROMPTS)
    results = pipeline.generate(questions, [_greedy()] * len(questions))
    assert [r.m_generation_ids[0] for r in results] == list(TINY_PROMPTS.values())


def test_completions_reproduce_and_stop_at_eos(
    pipeline: openvino_genai.ContinuousBatchingPipeline,
) -> None:
    tok = pipeline.get_tokenizer()
    inputs = [tok.encode(p, add_special_tokens=False).input_ids for p in TINY_COMPLETIONS]
    results = pipeline.generate(inputs, [_greedy(50)] * len(inputs))
    texts = [tok.decode(list(r.m_generation_ids[0])) for r in results]
    assert texts == list(TINY_COMPLETIONS.values())
    assert all(len(r.m_generation_ids[0]) < 50 for r in results)  # stopped, not cut off


def test_long_answer_and_multibyte_answer(tiny_model_dir: Path) -> None:
    tok = openvino_genai.Tokenizer(str(tiny_model_dir))
    long_answer = max(TINY_PROMPTS.values(), key=len)
    assert len(tok.encode(long_answer, add_special_tokens=False).input_ids.data[0]) >= 60
    multibyte = TINY_PROMPTS["Say hello in French."]
    ids = list(tok.encode(multibyte, add_special_tokens=False).input_ids.data[0])
    assert tok.decode(ids) == multibyte  # "café" and a 4-byte emoji split over several tokens
    assert any("\ufffd" in tok.decode(ids[:n]) for n in range(1, len(ids)))


def test_max_new_tokens_cuts_the_long_answer(
    pipeline: openvino_genai.ContinuousBatchingPipeline,
) -> None:
    tok = pipeline.get_tokenizer()
    prompt = tok.apply_chat_template([{"role": "user", "content": "Tell me a story."}], add_generation_prompt=True)
    config = _greedy(10)
    config.apply_chat_template = False
    result = pipeline.generate([prompt], [config])[0]
    text = result.m_generation_ids[0]
    assert 0 < len(text) < 40 and TINY_PROMPTS["Tell me a story."].startswith(text)


def test_cli_prints_model_folder_last(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tiny", "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == str(tiny_model_dir)


def test_cli_rejects_synthetic_options_for_tiny() -> None:
    with pytest.raises(SystemExit):
        main(["tiny", "--layers", "2"])


# --------------------------------------------------------------------------- tools, reasoning, JSON


@pytest.fixture(scope="module")
def tokenizer_json(tiny_model_dir: Path) -> dict[str, object]:
    return json.loads((tiny_model_dir / "tokenizer.json").read_text(encoding="utf-8"))


def test_tags_are_added_tokens_that_are_not_special(tiny_model_dir: Path, tokenizer_json: dict[str, object]) -> None:
    added = {t["content"]: t for t in tokenizer_json["added_tokens"]}  # type: ignore[attr-defined]
    assert set(added) == {*SPECIAL_TOKENS, *ADDED_TOKENS}
    assert [added[t]["special"] for t in SPECIAL_TOKENS] == [True] * len(SPECIAL_TOKENS)
    assert [added[t]["special"] for t in ADDED_TOKENS] == [False] * len(ADDED_TOKENS)
    tok = openvino_genai.Tokenizer(str(tiny_model_dir))
    for tag in ADDED_TOKENS:
        ids = list(tok.encode(f"a{tag}b", add_special_tokens=False).input_ids.data[0])
        assert added[tag]["id"] in ids, tag  # one token, even glued to text
        assert tok.decode([added[tag]["id"]], skip_special_tokens=True) == tag  # survives skipping specials
    table = load_token_bytes(tiny_model_dir)
    assert table is not None
    for tag in ADDED_TOKENS:
        assert table.table[added[tag]["id"]] == tag.encode() and added[tag]["id"] not in table.special_ids


def test_plain_chat_renders_as_chatml() -> None:
    assert render_chat_prompt([{"role": "user", "content": "Hi"}]) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert (
        render_chat_prompt(
            [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "H"}, {"type": "text", "text": "i"}]},
            ],
            add_generation_prompt=False,
        )
        == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
    )


def test_template_renders_tools_calls_and_results() -> None:
    prompt = render_chat_prompt(tiny_tool_followup_messages(), TINY_TOOLS)
    assert prompt.startswith("<|im_start|>system\n# Tools\n")
    assert "<tools>\n" + json.dumps(TINY_TOOLS[0], ensure_ascii=False) + "\n</tools>" in prompt
    assert prompt.endswith(
        f"<|im_start|>user\n{TINY_TOOL_PROMPT}<|im_end|>\n"
        f"<|im_start|>assistant\n{TINY_TOOL_CALL_OUTPUT}<|im_end|>\n"
        f"<|im_start|>user\n<tool_response>\n{TINY_TOOL_RESULT}\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    # arguments as an object render exactly as the JSON string a client sends back; ids do not show
    assert render_chat_prompt(tiny_tool_followup_messages("other", arguments_as_string=False), TINY_TOOLS) == prompt
    with_system = render_chat_prompt([{"role": "system", "content": "Be brief."}, *tiny_tool_followup_messages()], TINY_TOOLS)
    assert with_system.startswith("<|im_start|>system\nBe brief.\n\n# Tools\n") and with_system.count("<|im_start|>system") == 1


def test_template_groups_tool_results_and_drops_old_thinking() -> None:
    call: dict[str, Any] = {"id": "a", "type": "function", "function": {"name": "f", "arguments": {}}}
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [call, {**call, "id": "b"}]},
        {"role": "tool", "tool_call_id": "a", "content": "1"},
        {"role": "tool", "tool_call_id": "b", "content": "2"},
        {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nDone."},
    ]
    assert render_chat_prompt(messages, add_generation_prompt=False) == (
        "<|im_start|>user\nQ<|im_end|>\n"
        '<|im_start|>assistant\nChecking.\n<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>'
        '\n<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\n<tool_response>\n1\n</tool_response>\n<tool_response>\n2\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\nDone.<|im_end|>\n"
    )


def test_template_thinking_switch_and_unknown_role() -> None:
    user = [{"role": "user", "content": TINY_THINK_PROMPT}]
    assert render_chat_prompt(user, enable_thinking=True) == render_chat_prompt(user, enable_thinking=None) == render_chat_prompt(user)
    assert render_chat_prompt(user, enable_thinking=False) == render_chat_prompt(user) + "<think>\n\n</think>\n\n"
    with pytest.raises(Exception, match="unsupported role: robot"):
        render_chat_prompt([{"role": "robot", "content": "x"}])


def test_server_and_genai_render_the_template_alike(tiny_model_dir: Path) -> None:
    server = ModelTokenizer.load(tiny_model_dir)
    genai = openvino_genai.Tokenizer(str(tiny_model_dir))
    for case in TINY_CHAT_CASES.values():
        expected = render_chat_prompt(case["messages"], case["tools"], **case["template_kwargs"])
        kwargs = {"tools": case["tools"]} if case["tools"] else {}
        assert server.render_chat(case["messages"], **kwargs, **case["template_kwargs"]) == expected
        if not case["template_kwargs"]:
            assert genai.apply_chat_template(case["messages"], add_generation_prompt=True, **kwargs) == expected


def test_tool_call_is_generated(pipeline: openvino_genai.ContinuousBatchingPipeline) -> None:
    text, ids = _generate(pipeline, render_chat_prompt([{"role": "user", "content": TINY_TOOL_PROMPT}], TINY_TOOLS))
    assert text == TINY_TOOL_CALL_OUTPUT == '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    assert ids[-1] == pipeline.get_tokenizer().get_eos_token_id()
    body = text.removeprefix("<tool_call>").removesuffix("</tool_call>")
    assert json.loads(body) == TINY_TOOL_CALL


@pytest.mark.parametrize("arguments_as_string", [True, False])
def test_tool_result_gets_a_text_answer(pipeline: openvino_genai.ContinuousBatchingPipeline, arguments_as_string: bool) -> None:
    messages = tiny_tool_followup_messages("call_abc", arguments_as_string)
    text, _ = _generate(pipeline, render_chat_prompt(messages, TINY_TOOLS))
    assert text == TINY_TOOL_FOLLOWUP_ANSWER


def test_think_block_then_answer(pipeline: openvino_genai.ContinuousBatchingPipeline) -> None:
    text, _ = _generate(pipeline, render_chat_prompt([{"role": "user", "content": TINY_THINK_PROMPT}]))
    assert text == TINY_THINK_OUTPUT == f"<think>\n{TINY_THINK_REASONING}\n</think>\n\n{TINY_THINK_ANSWER}"


def test_thinking_disabled_answers_at_once(pipeline: openvino_genai.ContinuousBatchingPipeline) -> None:
    text, _ = _generate(pipeline, render_chat_prompt([{"role": "user", "content": TINY_THINK_PROMPT}], enable_thinking=False))
    assert text == TINY_THINK_ANSWER


def test_json_answer_parses(pipeline: openvino_genai.ContinuousBatchingPipeline) -> None:
    text, _ = _generate(pipeline, render_chat_prompt([{"role": "user", "content": TINY_JSON_PROMPT}]))
    assert text == TINY_JSON_ANSWER
    assert json.loads(text) == {"name": "Tom", "age": 3, "color": "gray"}


def test_every_answer_also_holds_in_f32(tiny_model_dir: Path) -> None:
    """The CPU runs bf16 by default where it can; the answers must not depend on it."""
    scheduler = openvino_genai.SchedulerConfig()
    scheduler.cache_size = 0
    f32 = openvino_genai.ContinuousBatchingPipeline(str(tiny_model_dir), scheduler, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    for case in TINY_CHAT_CASES.values():
        text, _ = _generate(f32, render_chat_prompt(case["messages"], case["tools"], **case["template_kwargs"]))
        assert text == case["output"]

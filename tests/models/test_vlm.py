"""The tiny VLM (tests/models/vlm.py): its conversations, its folder, the exact answers through
openvino-genai's continuous batching and VLMPipeline, and how genai takes prompts and images
(each fact of vlm.py's docstring)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import openvino_genai
import pytest

from calculators.llm.model_files import ModelTokenizer
from tests.models import VLM_ANSWERS, VLM_CASES, VLM_CHAT_TEMPLATE, build_tiny_vlm, tiny_vlm_recipe
from tests.models.__main__ import BUILDERS
from tests.models.common import recipe_hash
from tests.models.vlm import VLM_FILES, cb_generate, cb_pipeline, greedy_config, ov_images
from tests.models.vlm_data import COLOR_PROMPT, IMAGE_TOKEN, TWO_COLORS_PROMPT, color_image, shape_image, two_colors_answer
from tests.models.vlm_train import expand_image_tags, render_vlm_prompt

TOKENS_PER_IMAGE = 4  # (28 / 14) ** 2 patches


def _case(name: str) -> Any:
    return next(case for case in VLM_CASES if case.name == name)


# --------------------------------------------------------------------------- data (fast)


def test_registered_and_recipe_is_stable() -> None:
    assert BUILDERS["tiny-vlm"] is build_tiny_vlm
    assert recipe_hash(tiny_vlm_recipe()) == recipe_hash(tiny_vlm_recipe())


def test_cases_cover_every_kind_with_exact_answers() -> None:
    answers = {case.answer for case in VLM_CASES}
    assert set(VLM_ANSWERS.values()) <= answers
    assert two_colors_answer("red", "blue") in answers
    assert any(len(case.messages) == 3 and not isinstance(case.messages[2]["content"], list) for case in VLM_CASES)
    for case in VLM_CASES:
        assert all(image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 for image in case.images)


def test_template_puts_an_image_tag_where_each_image_part_is() -> None:
    text_first = render_vlm_prompt(_case("color_red_text_first").messages)
    assert text_first == f"<|im_start|>user\n{COLOR_PROMPT}{IMAGE_TOKEN}<|im_end|>\n<|im_start|>assistant\n"
    image_first = render_vlm_prompt(_case("two_red_blue_image_first").messages)
    assert image_first.startswith(f"<|im_start|>user\n{IMAGE_TOKEN}{IMAGE_TOKEN}{TWO_COLORS_PROMPT}")
    followup = render_vlm_prompt(_case("followup_circle_red_text_first").messages)
    assert followup.count(IMAGE_TOKEN) == 1 and followup.index(IMAGE_TOKEN) < followup.index("circle.")
    for case in VLM_CASES:
        assert render_vlm_prompt(case.messages).count(IMAGE_TOKEN) == len(case.images)


def test_openai_messages_carry_image_urls_in_order() -> None:
    case = _case("two_green_red_text_first")
    urls = iter(["u0", "u1"])
    messages = case.openai_messages(lambda image: next(urls))
    parts = messages[0]["content"]
    assert parts[0] == {"type": "text", "text": TWO_COLORS_PROMPT}
    assert [p["image_url"]["url"] for p in parts[1:]] == ["u0", "u1"]
    assert render_vlm_prompt(messages) == render_vlm_prompt(case.messages)  # image_url parts render alike


# --------------------------------------------------------------------------- the built folder (e2e)


@pytest.fixture(scope="module")
def pipe(tiny_vlm_dir: Path) -> Any:
    return cb_pipeline(tiny_vlm_dir)


def _generate(pipe: Any, prompt: str, images: list[Any], config: Any | None = None) -> Any:
    """One request through ContinuousBatchingPipeline.generate: (text, prompt token count, score:
    the answer's log probability, equal only for the same input sequence)."""
    if config is None:
        config = greedy_config()
        config.logprobs = 1
    result = pipe.generate([prompt], [images], [config])[0]
    return result.texts[0], result.perf_metrics.get_num_input_tokens(), result.scores[0]


def test_folder_has_what_genai_and_the_server_read(tiny_vlm_dir: Path) -> None:
    for name in (*VLM_FILES, "tokenizer_config.json", "processor_config.json", "hf/model.safetensors", "hf/preprocessor_config.json"):
        assert (tiny_vlm_dir / name).is_file(), name
    assert (tiny_vlm_dir / "chat_template.jinja").read_text() == VLM_CHAT_TEMPLATE
    assert json.loads((tiny_vlm_dir / "tokenizer_config.json").read_text())["chat_template"] == VLM_CHAT_TEMPLATE
    config = json.loads((tiny_vlm_dir / "config.json").read_text())
    assert config["model_type"] == "llava" and config["image_seq_length"] == TOKENS_PER_IMAGE
    preprocessor = json.loads((tiny_vlm_dir / "preprocessor_config.json").read_text())
    assert preprocessor["size"] == {"shortest_edge": 28} and preprocessor["crop_size"] == {"height": 28, "width": 28}
    tok = openvino_genai.Tokenizer(str(tiny_vlm_dir))
    assert list(tok.encode(IMAGE_TOKEN, add_special_tokens=False).input_ids.data[0]) == [config["image_token_index"]]


def test_the_servers_tokenizer_renders_the_trained_prompts(tiny_vlm_dir: Path) -> None:
    """OpenAI messages with image_url parts, through the server's ModelTokenizer, give the prompts
    the model was trained and verified on."""
    tokenizer = ModelTokenizer.load(tiny_vlm_dir)
    for case in VLM_CASES:
        messages = case.openai_messages(lambda image: "data:image/png;base64,")
        assert tokenizer.render_chat(messages) == render_vlm_prompt(case.messages), case.name


def test_continuous_batching_gives_every_answer(pipe: Any, tiny_vlm_dir: Path) -> None:
    tok = openvino_genai.Tokenizer(str(tiny_vlm_dir))
    got = cb_generate(pipe, VLM_CASES)  # all at once: images and text-only requests share steps
    texts = {case.name: tok.decode(ids, skip_special_tokens=True) for case, ids in zip(VLM_CASES, got, strict=True)}
    assert texts == {case.name: case.answer for case in VLM_CASES}
    assert all(ids[-1] == tok.get_eos_token_id() for ids in got)  # stopped at eos, not cut off


def test_vlm_pipeline_gives_every_answer(tiny_vlm_dir: Path) -> None:
    vlm = openvino_genai.VLMPipeline(str(tiny_vlm_dir), "CPU")
    texts = {}
    for case in VLM_CASES:
        result = vlm.generate(render_vlm_prompt(case.messages), images=ov_images(case), generation_config=greedy_config())
        texts[case.name] = result.texts[0]
    assert texts == {case.name: case.answer for case in VLM_CASES}


def test_other_sizes_and_pure_colours(pipe: Any) -> None:
    """genai resizes and crops itself: large, tiny and non-square images give the same answers."""
    red = np.zeros((480, 640, 3), np.uint8)
    red[..., 0] = 255
    prompt = render_vlm_prompt(_case("color_red_text_first").messages)
    assert _generate(pipe, prompt, [ov.Tensor(red[None].copy())])[0] == VLM_ANSWERS["red"]
    assert _generate(pipe, prompt, [ov.Tensor(color_image("blue", (1, 1))[None].copy())])[0] == VLM_ANSWERS["blue"]
    shape_prompt = render_vlm_prompt(_case("shape_square_red_text_first").messages)
    square = shape_image("square", "green", size=(240, 320))
    assert _generate(pipe, shape_prompt, [ov.Tensor(square[None].copy())])[0] == VLM_ANSWERS["square"]


def test_prompt_tokens_are_text_plus_five_per_image(pipe: Any, tiny_vlm_dir: Path) -> None:
    """Each tag becomes 4 image tokens and a newline; genai counts them as prompt tokens."""
    tok = openvino_genai.Tokenizer(str(tiny_vlm_dir))
    for name in ("color_red_text_first", "two_red_blue_image_first", "followup_square_blue_text_first", "text"):
        case = _case(name)
        prompt = render_vlm_prompt(case.messages)
        text_only = len(tok.encode(prompt, add_special_tokens=False).input_ids.data[0])
        expanded = len(tok.encode(expand_image_tags(prompt, TOKENS_PER_IMAGE), add_special_tokens=False).input_ids.data[0])
        _, counted, _ = _generate(pipe, prompt, ov_images(case))
        assert counted == expanded == text_only + TOKENS_PER_IMAGE * len(case.images), name  # each 1-token tag -> 5 tokens


def test_apply_chat_template_defaults_to_rendering_again(pipe: Any, tiny_vlm_dir: Path) -> None:
    """The default GenerationConfig wraps a rendered prompt in a second user turn."""
    assert openvino_genai.GenerationConfig().apply_chat_template
    case = _case("color_red_text_first")
    prompt = render_vlm_prompt(case.messages)
    twice = greedy_config()
    twice.apply_chat_template = True
    _, once_count, _ = _generate(pipe, prompt, ov_images(case))
    _, twice_count, _ = _generate(pipe, prompt, ov_images(case), twice)
    tok = openvino_genai.Tokenizer(str(tiny_vlm_dir))
    wrapped = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True)
    assert twice_count == len(tok.encode(expand_image_tags(wrapped, TOKENS_PER_IMAGE), add_special_tokens=False).input_ids.data[0])
    assert twice_count == once_count + 8


def test_universal_tags_name_images_by_index(pipe: Any) -> None:
    case = _case("two_red_blue_text_first")
    prompt = render_vlm_prompt(case.messages)
    native = _generate(pipe, prompt, ov_images(case))
    universal = prompt.replace(IMAGE_TOKEN, "<ov_genai_image_0>", 1).replace(IMAGE_TOKEN, "<ov_genai_image_1>", 1)
    assert _generate(pipe, universal, ov_images(case)) == native
    swapped = prompt.replace(IMAGE_TOKEN, "<ov_genai_image_1>", 1).replace(IMAGE_TOKEN, "<ov_genai_image_0>", 1)
    assert _generate(pipe, swapped, ov_images(case))[0] == two_colors_answer("blue", "red")


def test_a_prompt_without_tags_gets_the_images_in_front(pipe: Any) -> None:
    case = _case("color_green_text_first")
    prompt = render_vlm_prompt(case.messages)
    untagged = _generate(pipe, prompt.replace(IMAGE_TOKEN, ""), ov_images(case))
    assert untagged == _generate(pipe, IMAGE_TOKEN + prompt.replace(IMAGE_TOKEN, ""), ov_images(case))
    assert untagged[2] != _generate(pipe, prompt, ov_images(case))[2]  # not where the template puts it


def test_native_tags_must_match_the_images(tiny_vlm_dir: Path) -> None:
    pipe = cb_pipeline(tiny_vlm_dir)
    case = _case("color_red_text_first")
    with pytest.raises(RuntimeError, match="number of native vision tags"):
        pipe.add_request(0, render_vlm_prompt(case.messages), ov_images(case) * 2, greedy_config())
    assert not pipe.has_non_finished_requests()


def test_token_ids_do_not_work_on_a_vlm(tiny_vlm_dir: Path) -> None:
    pipe = cb_pipeline(tiny_vlm_dir)
    ids = pipe.get_tokenizer().encode(render_vlm_prompt(_case("text").messages), add_special_tokens=False).input_ids
    handle = pipe.add_request(0, ids, greedy_config())  # accepted...
    with pytest.raises(RuntimeError, match="input_ids"):
        pipe.step()  # ...but the language model has no input_ids port
    assert handle.get_status() == openvino_genai.GenerationStatus.RUNNING
    with pytest.raises(RuntimeError):
        pipe.step()  # and the pipeline is broken from then on

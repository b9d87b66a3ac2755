"""Image request parsing: fields, limits from the node's options, multipart text values, 400s naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from calculators.image.options import ImageGenOptions, parse_resolution
from calculators.image.request import UploadedFile, parse_request
from graphs.errors import InvalidRequestError

OPTIONS = ImageGenOptions(
    models_path="./", max_resolution="512x256", max_num_images_per_prompt=4, default_num_inference_steps=3, max_num_inference_steps=8
)
PNG = UploadedFile("a.png", "image/png", b"\x89PNG...")


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "sd", "prompt": "a red square", **fields}


def refused(kind: str = "generations", options: ImageGenOptions = OPTIONS, **fields: Any) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        parse_request(kind, body(**fields), options)  # type: ignore[arg-type]
    return caught.value


def test_defaults_come_from_the_options() -> None:
    job = parse_request("generations", body(), OPTIONS)
    assert job.config == {"num_images_per_prompt": 1, "num_inference_steps": 3}
    assert job.count == 1 and job.size is None and job.prompt == "a red square"


def test_every_genai_field_reaches_the_config() -> None:
    job = parse_request(
        "generations",
        body(
            n=2,
            size="64x32",
            num_inference_steps=5,
            rng_seed=7,
            guidance_scale=1.5,
            negative_prompt="blue",
            prompt_2="x",
            max_sequence_length=77,
        ),
        OPTIONS,
    )
    assert job.config == {
        "num_images_per_prompt": 2,
        "num_inference_steps": 5,
        "width": 64,
        "height": 32,
        "rng_seed": 7,
        "guidance_scale": 1.5,
        "negative_prompt": "blue",
        "prompt_2": "x",
        "max_sequence_length": 77,
    }
    assert job.size == (64, 32) and job.count == 2


def test_seed_is_rng_seed_and_width_height_are_size() -> None:
    job = parse_request("generations", body(seed=3, width=64, height=64, response_format="b64_json", size="auto"), OPTIONS)
    assert job.config["rng_seed"] == 3 and job.size == (64, 64)


def test_multipart_text_values_are_coerced() -> None:
    job = parse_request("edits", body(n="2", strength="0.5", rng_seed="11", size="64x64", image=PNG), OPTIONS)
    assert job.config["num_images_per_prompt"] == 2 and job.config["strength"] == 0.5 and job.config["rng_seed"] == 11
    assert job.image is PNG and job.mask is None


def test_unknown_fields_are_ignored_and_named() -> None:
    assert parse_request("generations", body(foo=1, bar="x"), OPTIONS).ignored == ("bar", "foo")


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"n": 5}, "n", "at most 4"),
        ({"n": 0}, "n", "greater than or equal to 1"),
        ({"num_inference_steps": 9}, "num_inference_steps", "at most 8"),
        ({"size": "1024x64"}, "size", "max_resolution 512x256"),
        ({"size": "60x64"}, "size", "multiples of 8"),
        ({"size": "big"}, "size", "WIDTHxHEIGHT"),
        ({"size": "0x64"}, "size", "positive"),
        ({"width": 64}, "height", "both width and height"),
        ({"size": "64x64", "width": 64, "height": 64}, "size", "not both"),
        ({"response_format": "url"}, "response_format", "b64_json"),
        ({"response_format": "jpeg"}, "response_format", "invalid value"),
        ({"output_format": "webp"}, "output_format", "invalid value"),
        ({"style": "vivid"}, "style", "not supported"),
        ({"quality": "hd"}, "quality", "not supported"),
        ({"prompt": ""}, "prompt", "at least 1"),
        ({"prompt": 5}, "prompt", "string"),
        ({"strength": 0.5}, "strength", "images/edits"),
        ({"rng_seed": -1}, "rng_seed", "greater than or equal to 0"),
        ({"guidance_scale": float("nan")}, "guidance_scale", "finite"),
        ({"n": 2, "num_images_per_prompt": 3}, "n", "differ"),
        ({"image": PNG}, "image", "images/edits"),
    ],
)
def test_bad_generation_fields_are_400s_naming_the_field(fields: dict[str, Any], param: str, words: str) -> None:
    error = refused(**fields)
    assert error.param == param and words in error.message, error.message


def test_missing_prompt_is_named() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_request("generations", {"model": "sd"}, OPTIONS)
    assert caught.value.param == "prompt" and "missing" in caught.value.message


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({}, "image", "missing required file"),
        ({"image": "not a file"}, "image", "missing required file"),
        ({"image": [PNG, PNG]}, "image", "one image"),
        ({"image": PNG, "mask": "x"}, "mask", "must be a file"),
        ({"image": PNG, "strength": "1.5"}, "strength", "less than or equal to 1"),
        ({"image": PNG, "n": "two"}, "n", "integer"),
    ],
)
def test_bad_edit_fields(fields: dict[str, Any], param: str, words: str) -> None:
    error = refused("edits", **fields)
    assert error.param == param and words in error.message, error.message


def test_a_list_of_one_image_is_that_image() -> None:
    assert parse_request("edits", body(image=[PNG], mask=PNG), OPTIONS).mask is PNG


def test_static_shapes_take_only_their_shape() -> None:
    static = ImageGenOptions(models_path="./", resolution="64x64", num_images_per_prompt=2)
    job = parse_request("generations", body(), static)
    assert job.size == (64, 64) and job.count == 2
    assert refused(options=static, size="128x128").param == "size"
    assert refused(options=static, n=1).param == "n"


def test_default_resolution_applies_when_no_size() -> None:
    options = ImageGenOptions(models_path="./", default_resolution="128x64")
    assert parse_request("generations", body(), options).config["width"] == 128


def test_resolutions_parse() -> None:
    assert parse_resolution(" 512x256 ") == (512, 256)
    with pytest.raises(ValueError):
        parse_resolution("512*256")
    with pytest.raises(ValueError):
        ImageGenOptions(models_path="./", max_resolution="huge")

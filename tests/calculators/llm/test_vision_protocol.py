"""The vision messages of the engine IPC: AddVision carries a prompt (text or token ids) and views of
the caller's images; PromptLength brings the engine's count back; bad images never reach genai."""

from __future__ import annotations

import numpy as np
import pytest

from calculators.llm.engine.protocol import AddVision, Image, PromptLength, decode_from_worker, decode_to_worker, encode
from calculators.llm.engine.vision import VisionInputs, vision_request
from graphs.errors import InvalidRequestError


def solid(height: int, width: int, rgb: tuple[int, int, int]) -> np.ndarray:
    return np.tile(np.array(rgb, dtype=np.uint8), (height, width, 1))


def test_images_cross_as_views_and_arrive_whole() -> None:
    red, blue = solid(3, 5, (255, 0, 0)), solid(4, 2, (0, 0, 255))
    message = vision_request(7, [1, 2, 3], {"max_new_tokens": 4}, "<image> and <image>?", [red, blue], "m")
    # No copy of its own before the frame: the message's pixels are the caller's memory.
    assert np.shares_memory(np.frombuffer(message.images[0].data, dtype=np.uint8), red)
    decoded = decode_to_worker(encode(message))
    assert isinstance(decoded, AddVision)
    assert (decoded.request_id, decoded.prompt, decoded.prompt_tokens) == (7, "<image> and <image>?", 3)
    assert decoded.config == {"max_new_tokens": 4}
    assert [(i.height, i.width) for i in decoded.images] == [(3, 5), (4, 2)]
    pixels = [np.frombuffer(i.data, dtype=np.uint8).reshape(i.height, i.width, 3) for i in decoded.images]
    assert np.array_equal(pixels[0], red) and np.array_equal(pixels[1], blue)


def test_a_strided_image_is_made_contiguous() -> None:
    wide = solid(4, 8, (0, 255, 0))
    wide[:, ::2] = 9
    message = vision_request(1, [], {}, "x", [wide[:, ::2]], "m")  # every other column: not contiguous
    assert bytes(message.images[0].data) == np.full((4, 4, 3), 9, dtype=np.uint8).tobytes()


def test_without_text_the_token_ids_go() -> None:
    decoded = decode_to_worker(encode(vision_request(2, [5, 6], {}, None, [], "m")))
    assert isinstance(decoded, AddVision) and decoded.prompt == [5, 6] and decoded.images == []


def test_prompt_length_message() -> None:
    assert decode_from_worker(encode(PromptLength(7, 33))) == PromptLength(7, 33)


@pytest.mark.parametrize(
    "image",
    [np.zeros((4, 4, 3), dtype=np.float32), np.zeros((4, 4), dtype=np.uint8), np.zeros((4, 4, 4), dtype=np.uint8), [[0, 0, 0]]],
    ids=["float", "grey", "rgba", "list"],
)
def test_only_rgb_uint8_arrays_are_images(image: object) -> None:
    with pytest.raises(ValueError, match=r"RGB uint8 array of shape \(height, width, 3\)"):
        vision_request(1, [], {}, "x", [image], "m")  # type: ignore[list-item]


def test_echo_is_refused_for_a_vision_engine() -> None:
    with pytest.raises(InvalidRequestError, match="echo") as caught:
        vision_request(1, [1], {"echo": True}, "x", [], "tiny-vlm")
    assert caught.value.param == "echo" and "tiny-vlm" in str(caught.value)


def test_the_worker_refuses_pixels_that_do_not_match_the_size() -> None:
    short = AddVision(1, "x", [Image(2, 2, memoryview(bytes(11)))], {}, 1)
    with pytest.raises(ValueError, match="2x2 pixels with 11 bytes"):
        VisionInputs.images(short)
    (tensor,) = VisionInputs.images(AddVision(1, "x", [Image(2, 3, memoryview(bytes(range(18))))], {}, 1))
    assert list(tensor.shape) == [1, 2, 3, 3] and tensor.data.ravel().tolist() == list(range(18))

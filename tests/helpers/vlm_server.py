"""The server of the image_url end-to-end tests: the tiny text model (`tiny`) and the trained tiny
VLM three times (`vlm`: VLM_CB, `vlm-stateful`: VLM, `vlm-short`: a small max_prompt_tokens) in one config, allowed to fetch images from
loopback; and the loopback image server it fetches from."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers.images import ImageServer, image_server, png
from tests.helpers.servables import llm_graph, write_config
from tests.helpers.server import Server, start_server
from tests.models.vlm_data import color_image, shape_image

#: 127.0.0.1: the image server. 169.254.169.254 is listed too, to show that the address rules
#: refuse a metadata address even when an operator lists it.
ALLOWED_DOMAINS = "127.0.0.1,169.254.169.254"
SHORT_PROMPT_LIMIT = 16


def start_vlm_server(root: Path, tiny_model_dir: Path, tiny_vlm_dir: Path, *extra: str) -> Server:
    graphs = {
        "tiny": llm_graph(tiny_model_dir),
        "vlm": llm_graph(tiny_vlm_dir, "pipeline_type: VLM_CB"),
        "vlm-stateful": llm_graph(tiny_vlm_dir, "pipeline_type: VLM"),
        # a prompt limit one image's tokens cross: a one-image colour question is 15 text + 4 image tokens
        "vlm-short": llm_graph(tiny_vlm_dir, f"max_prompt_tokens: {SHORT_PROMPT_LIMIT}"),
    }
    config = write_config(root, graphs)
    flags = ("--allowed_media_domains", ALLOWED_DOMAINS, "--metrics_enable", "--trace", "header")
    return start_server("--config_path", str(config), *flags, *extra)


@contextmanager
def vlm_image_server() -> Iterator[ImageServer]:
    """red.png, blue.png (solid 32x32) and square-blue.png (56x56), as the tiny VLM learnt them."""
    images = {
        "red.png": png(color_image("red")),
        "blue.png": png(color_image("blue")),
        "square-blue.png": png(shape_image("square", "blue")),
    }
    with image_server(images) as server:
        yield server

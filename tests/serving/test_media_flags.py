"""The image_url flags (serving/media_flags.py) become the server's MediaPolicy and image limit;
the defaults fetch no URL and read no file; a bad value stops the CLI with one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from calculators.media.access import DEFAULT_MAX_IMAGES_PER_REQUEST
from calculators.media.policy import DEFAULT_MAX_IMAGE_PIXELS, MediaPolicy
from serving.cli import build_parser, main, settings_from_args
from serving.settings import Settings


def settings(*flags: str) -> Settings:
    return settings_from_args(build_parser().parse_args(["--model_path", "m", *flags]))


def test_the_defaults_deny_every_url_and_path() -> None:
    got = settings()
    assert got.media == MediaPolicy() and got.media.allowed_domains == () and got.media.allowed_local_path is None
    assert not got.media.allow_private_addresses and got.media.max_image_pixels == DEFAULT_MAX_IMAGE_PIXELS
    assert got.max_images_per_request == DEFAULT_MAX_IMAGES_PER_REQUEST == Settings().max_images_per_request


def test_every_flag_reaches_the_policy(tmp_path: Path) -> None:
    got = settings(
        "--allowed_media_domains", "images.example.com, *.cdn.example.org,127.0.0.1",
        "--allowed_local_media_path", str(tmp_path),
        "--allow_private_media_addresses",
        "--max_image_bytes", "1000",
        "--max_image_pixels", "640000",
        "--media_fetch_timeout", "2.5",
        "--max_media_redirects", "0",
        "--max_images_per_request", "3",
    )  # fmt: skip
    assert got.media == MediaPolicy(
        allowed_domains=("images.example.com", "*.cdn.example.org", "127.0.0.1"),
        allowed_local_path=tmp_path,
        allow_private_addresses=True,
        max_image_bytes=1000,
        max_image_pixels=640000,
        fetch_timeout_s=2.5,
        max_redirects=0,
    )
    assert got.max_images_per_request == 3
    assert settings("--allow_private_media_addresses", "false").media.allow_private_addresses is False  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--allowed_media_domains", ".example.com"], "--allowed_media_domains entry '.example.com'"),
        (["--allowed_local_media_path", "relative/dir"], "--allowed_local_media_path must be an absolute path"),
        (["--max_images_per_request", "0"], "expected a positive integer"),
        (["--media_fetch_timeout", "0"], "expected a positive number"),
        (["--max_media_redirects", "-1"], "expected 0 or a positive integer"),
        (["--max_image_bytes", "lots"], "invalid positive_int value"),
    ],
)
def test_a_bad_value_stops_the_cli_with_one_line(flags: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--model_path", "m", *flags])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err

"""Local image_url (absolute paths and file:// URLs): only from inside --allowed_local_media_path,
with no way out through `..` or symlinks, and only regular files within the byte limit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from calculators.media import LoadedImage, MediaPolicy, load_image
from graphs.errors import InvalidRequestError

PARAM = "messages.1.content.0.image_url"
OUTSIDE = "image_url path is outside --allowed_local_media_path"


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """(allowed, secret): allowed/ holds green.png; secret.png lies beside the folder, outside it."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    Image.new("RGB", (5, 3), (0, 255, 0)).save(allowed / "green.png")
    Image.new("RGB", (2, 2), (255, 0, 0)).save(tmp_path / "secret.png")
    return allowed, tmp_path / "secret.png"


async def load(url: str, allowed: Path | None, **limits: int) -> LoadedImage:
    return await load_image(url, MediaPolicy(allowed_local_path=allowed, **limits), param=PARAM)  # type: ignore[arg-type]


async def refusal(url: str, allowed: Path | None, **limits: int) -> str:
    with pytest.raises(InvalidRequestError) as caught:
        await load(url, allowed, **limits)
    assert caught.value.param == PARAM
    return caught.value.message


async def test_a_file_in_the_folder_loads_by_path_and_by_file_url(folders: tuple[Path, Path]) -> None:
    allowed, _ = folders
    by_path = await load(str(allowed / "green.png"), allowed)
    by_url = await load((allowed / "green.png").as_uri(), allowed)
    by_localhost_url = await load(f"file://localhost{allowed / 'green.png'}", allowed)
    for loaded in (by_path, by_url, by_localhost_url):
        assert loaded.source == "file" and loaded.pixels.shape == (3, 5, 3) and (loaded.pixels == (0, 255, 0)).all()
    assert by_path.nbytes == (allowed / "green.png").stat().st_size


async def test_percent_encoded_file_urls_are_decoded(folders: tuple[Path, Path]) -> None:
    allowed, _ = folders
    (allowed / "green.png").rename(allowed / "a green image.png")
    loaded = await load((allowed / "a green image.png").as_uri(), allowed)  # file:///.../a%20green%20image.png
    assert loaded.pixels.shape == (3, 5, 3)


async def test_no_local_file_without_the_flag(folders: tuple[Path, Path]) -> None:
    allowed, _ = folders
    message = await refusal(str(allowed / "green.png"), None)
    assert message == "local image paths are not allowed (--allowed_local_media_path is not set)"


async def test_dot_dot_cannot_leave_the_folder(folders: tuple[Path, Path]) -> None:
    allowed, secret = folders
    assert await refusal(f"{allowed}/../{secret.name}", allowed) == OUTSIDE
    assert await refusal(f"file://{allowed}/%2E%2E/{secret.name}", allowed) == OUTSIDE
    assert await refusal(f"{allowed}/../missing.png", allowed) == OUTSIDE  # outside is outside, whether it exists or not


async def test_symlinks_cannot_leave_the_folder(folders: tuple[Path, Path]) -> None:
    allowed, secret = folders
    (allowed / "link.png").symlink_to(secret)
    (allowed / "outer").symlink_to(secret.parent, target_is_directory=True)
    assert await refusal(str(allowed / "link.png"), allowed) == OUTSIDE
    assert await refusal(str(allowed / "outer" / secret.name), allowed) == OUTSIDE
    # a link out and back in resolves inside: it is the real path that counts
    assert (await load(str(allowed / "outer" / "allowed" / "green.png"), allowed)).pixels.shape == (3, 5, 3)


async def test_symlinks_that_stay_inside_are_followed(folders: tuple[Path, Path], tmp_path: Path) -> None:
    allowed, _ = folders
    (allowed / "alias.png").symlink_to(allowed / "green.png")
    assert (await load(str(allowed / "alias.png"), allowed)).pixels.shape == (3, 5, 3)
    # the allowed folder may itself be reached through a link
    (tmp_path / "via-link").symlink_to(allowed, target_is_directory=True)
    assert (await load(str(tmp_path / "via-link" / "green.png"), tmp_path / "via-link")).pixels.shape == (3, 5, 3)


async def test_missing_files_fifos_and_big_files_are_refused(folders: tuple[Path, Path]) -> None:
    allowed, _ = folders
    assert await refusal(str(allowed / "missing.png"), allowed) == "image_url names no file under --allowed_local_media_path"
    os.mkfifo(allowed / "pipe.png")  # would block a plain open() forever
    assert await refusal(str(allowed / "pipe.png"), allowed) == "image_url path is not a regular file"
    assert await refusal(str(allowed), allowed) == "image_url path is not a regular file"
    size = (allowed / "green.png").stat().st_size
    message = await refusal(str(allowed / "green.png"), allowed, max_image_bytes=size - 1)
    assert message == f"image larger than --max_image_bytes ({size - 1:,} bytes)"


async def test_other_file_url_forms_are_refused(folders: tuple[Path, Path]) -> None:
    allowed, _ = folders
    assert "must name a local path" in await refusal(f"file://fileserver{allowed}/green.png", allowed)
    assert await refusal("file:green.png", allowed) == "image_url local path must be absolute"
    assert await refusal(f"file://{allowed}/green%00.png", allowed) == "image_url local path is not a valid path"

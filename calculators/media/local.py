"""Local images (`file://` URLs and absolute paths), only from inside --allowed_local_media_path.

The path is resolved (symlinks, `..`) before the containment check, and the file actually opened
is checked again through /proc/self/fd, so a link swapped in between cannot lead outside."""

from __future__ import annotations

import os
import stat
from urllib.parse import unquote, urlsplit

from calculators.media.policy import MediaPolicy, refuse, too_many_bytes

_OUTSIDE = "image_url path is outside --allowed_local_media_path"
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # NONBLOCK: a FIFO must not hang the open


def local_path(url: str) -> str:
    """The filesystem path a `file://` URL or an absolute path names."""
    if not url.lower().startswith("file:"):
        return url
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise refuse("image_url file URL must name a local path (file:///path)")
    return unquote(parts.path)


def read_local_image(url: str, policy: MediaPolicy) -> bytes:
    """The file's bytes, if the policy allows it. Blocking file I/O: call it off the event loop."""
    if policy.allowed_local_path is None:
        raise refuse("local image paths are not allowed (--allowed_local_media_path is not set)")
    path = local_path(url)
    if "\0" in path:
        raise refuse("image_url local path is not a valid path")
    if not os.path.isabs(path):
        raise refuse("image_url local path must be absolute")
    root = os.path.realpath(policy.allowed_local_path)
    real = os.path.realpath(path)
    if not _inside(real, root):
        raise refuse(_OUTSIDE)
    try:
        fd = os.open(real, _OPEN_FLAGS)
    except FileNotFoundError:
        raise refuse("image_url names no file under --allowed_local_media_path") from None
    except OSError:
        raise refuse("image_url file cannot be read") from None
    try:
        if not _inside(_opened_path(fd, real), root):
            raise refuse(_OUTSIDE)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise refuse("image_url path is not a regular file")
        if info.st_size > policy.max_image_bytes:
            raise too_many_bytes(policy)
        with open(fd, "rb", closefd=False) as file:
            data = file.read(policy.max_image_bytes + 1)  # the file may grow after fstat
    finally:
        os.close(fd)
    if len(data) > policy.max_image_bytes:
        raise too_many_bytes(policy)
    return data


def _opened_path(fd: int, checked: str) -> str:
    """What the descriptor really is (Linux); elsewhere the path checked before opening stands."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return checked


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root

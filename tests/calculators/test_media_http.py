"""http(s) image_url through `MediaLoader`, against a real aiohttp server on loopback (a free port):
allowed hosts fetch; every other host, hop, address, size and delay is a 400 naming its rule."""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
import pytest
from aiohttp import web
from PIL import Image

from calculators.media import LoadedImage, MediaLoader, MediaPolicy
from graphs.errors import InvalidRequestError

PARAM = "messages.0.content.0.image_url"


def png(size: tuple[int, int] = (6, 4), colour: tuple[int, int, int] = (0, 128, 255)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


IMAGE = png()
BIG = png((300, 300)) + b"\0" * 4096  # over the 4 KiB cap of the size tests, however well the PNG compresses


@dataclass
class ImageServer:
    base: str  # http://127.0.0.1:PORT
    port: int
    hits: dict[str, int]


def image_app(hits: dict[str, int]) -> web.Application:
    never = asyncio.Event()  # set by nobody: the "slow" handler waits until the client gives up

    async def serve(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        hits[name] = hits.get(name, 0) + 1
        if name == "image.png":
            return web.Response(body=IMAGE, content_type="image/png")
        if name == "big.png":  # Content-Length says it all
            return web.Response(body=BIG, content_type="image/png")
        if name == "streamed.png":  # no Content-Length: the bytes must be counted
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            for start in range(0, len(BIG), 1024):
                await response.write(BIG[start : start + 1024])
            await response.write_eof()
            return response
        if name == "slow.png":
            await never.wait()
        if name.startswith("hop"):  # hop3 -> hop2 -> hop1 -> hop0 -> image.png
            left = int(name.removeprefix("hop"))
            raise web.HTTPFound(f"/hop{left - 1}" if left else "/image.png")
        if name == "loop":
            raise web.HTTPFound("/loop")
        if name == "to-evil":
            raise web.HTTPFound("http://evil.example/image.png")
        if name == "to-metadata":
            raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")
        if name == "to-file":
            raise web.HTTPFound("file:///etc/passwd")
        if name == "text":
            return web.Response(text="<html>not an image</html>", content_type="text/html")
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_get("/{name}", serve)
    return app


@pytest.fixture
async def server() -> AsyncIterator[ImageServer]:
    hits: dict[str, int] = {}
    # handler_cancellation: the slow handler ends when the client hangs up
    runner = web.AppRunner(image_app(hits), handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        yield ImageServer(f"http://127.0.0.1:{port}", port, hits)
    finally:
        await runner.cleanup()


LOOPBACK = MediaPolicy(allowed_domains=("127.0.0.1",))


async def load(url: str, policy: MediaPolicy = LOOPBACK) -> LoadedImage:
    async with MediaLoader(policy) as loader:
        return await loader.load(url, param=PARAM)


async def refusal(url: str, policy: MediaPolicy = LOOPBACK) -> str:
    with pytest.raises(InvalidRequestError) as caught:
        await load(url, policy)
    assert caught.value.param == PARAM
    return caught.value.message


async def test_an_allowed_loopback_host_is_fetched(server: ImageServer) -> None:
    loaded = await load(f"{server.base}/image.png")
    assert loaded.source == "http" and loaded.nbytes == len(IMAGE)
    assert loaded.pixels.shape == (4, 6, 3) and (loaded.pixels == (0, 128, 255)).all()


async def test_localhost_by_name_is_fetched(server: ImageServer) -> None:
    loaded = await load(f"http://localhost:{server.port}/image.png", MediaPolicy(allowed_domains=("localhost",)))
    assert loaded.pixels.shape == (4, 6, 3)


async def test_one_loader_serves_many_images(server: ImageServer) -> None:
    async with MediaLoader(LOOPBACK) as loader:
        shapes = [(await loader.load(f"{server.base}/image.png")).pixels.shape for _ in range(3)]
        results = await asyncio.gather(loader.load(f"{server.base}/image.png"), loader.load(f"{server.base}/nope"), return_exceptions=True)
    assert shapes == [(4, 6, 3)] * 3
    assert isinstance(results[0], LoadedImage) and isinstance(results[1], InvalidRequestError)


async def test_hosts_not_allowed_are_refused_without_a_request(server: ImageServer) -> None:
    url = f"{server.base}/image.png"
    assert await refusal(url, MediaPolicy()) == "image_url has host '127.0.0.1', which is not in --allowed_media_domains"
    assert "not in --allowed_media_domains" in await refusal(url, MediaPolicy(allowed_domains=("127.0.0.2", "*.0.0.1")))
    assert "not in --allowed_media_domains" in await refusal(f"http://LOCALHOST:{server.port}/image.png")
    assert server.hits == {}


async def test_credentials_and_other_schemes_are_refused(server: ImageServer) -> None:
    assert "credentials" in await refusal(f"http://user:secret@127.0.0.1:{server.port}/image.png")
    assert "credentials" in await refusal(f"http://user@127.0.0.1:{server.port}/image.png")
    assert "image_url has scheme 'ftp'" in await refusal(f"ftp://127.0.0.1:{server.port}/image.png")
    assert server.hits == {}


async def test_redirects_within_the_limit_are_followed(server: ImageServer) -> None:
    loaded = await load(f"{server.base}/hop2", MediaPolicy(allowed_domains=("127.0.0.1",), max_redirects=3))
    assert loaded.pixels.shape == (4, 6, 3)


async def test_too_many_redirects_are_refused(server: ImageServer) -> None:
    assert "more than --max_media_redirects (3)" in await refusal(f"{server.base}/loop")
    assert server.hits["loop"] == 4  # the first request and three redirects, no more
    assert "more than --max_media_redirects (1)" in await refusal(
        f"{server.base}/hop2", MediaPolicy(allowed_domains=("127.0.0.1",), max_redirects=1)
    )


async def test_each_redirect_is_checked_like_the_first_url(server: ImageServer) -> None:
    message = await refusal(f"{server.base}/to-evil")
    assert message == "image_url redirects to host 'evil.example', which is not in --allowed_media_domains"
    assert "redirects to scheme 'file'" in await refusal(f"{server.base}/to-file")
    with_metadata = MediaPolicy(allowed_domains=("127.0.0.1", "169.254.169.254"))
    assert "link-local or cloud metadata" in await refusal(f"{server.base}/to-metadata", with_metadata)


@pytest.mark.parametrize("host", ["169.254.169.254", "[fe80::1]", "[::ffff:169.254.169.254]", "[fd00:ec2::254]"])
async def test_link_local_and_metadata_literals_are_refused_even_when_listed(host: str) -> None:
    policy = MediaPolicy(allowed_domains=(host,), fetch_timeout_s=30)
    message = await refusal(f"http://{host}/latest/meta-data/", policy)
    assert "link-local or cloud metadata address, refused unless --allow_private_media_addresses" in message


async def test_bodies_over_the_byte_limit_are_refused(server: ImageServer) -> None:
    small = MediaPolicy(allowed_domains=("127.0.0.1",), max_image_bytes=4096)
    expected = "image larger than --max_image_bytes (4,096 bytes)"
    assert await refusal(f"{server.base}/big.png", small) == expected  # by Content-Length
    assert await refusal(f"{server.base}/streamed.png", small) == expected  # counted while streaming
    assert (await load(f"{server.base}/image.png", small)).nbytes == len(IMAGE)


async def test_a_server_that_never_answers_hits_the_timeout(server: ImageServer) -> None:
    message = await refusal(f"{server.base}/slow.png", MediaPolicy(allowed_domains=("127.0.0.1",), fetch_timeout_s=0.2))
    assert message == "image_url host '127.0.0.1' did not send the image within --media_fetch_timeout (0.2 s)"


async def test_http_errors_and_non_images_are_refused(server: ImageServer) -> None:
    assert await refusal(f"{server.base}/missing.png") == "image_url host '127.0.0.1' answered HTTP 404"
    assert await refusal(f"{server.base}/text") == "not a supported image (png, jpeg, webp, gif)"


async def test_a_closed_port_is_a_clear_refusal_without_internal_detail() -> None:
    with socket.socket() as probe:  # a port nothing listens on (taken, then released)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    message = await refusal(f"http://127.0.0.1:{port}/image.png")
    assert message == "image_url host '127.0.0.1' could not be fetched: the connection failed"


async def test_the_pixels_match_what_was_served(server: ImageServer) -> None:
    loaded = await load(f"{server.base}/image.png")
    assert np.array_equal(loaded.pixels, np.asarray(Image.open(io.BytesIO(IMAGE)).convert("RGB")))

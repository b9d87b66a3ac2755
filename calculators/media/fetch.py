"""http(s) images: allowed hosts only, every address checked before connecting, bounded in bytes and time.

The one module of calculators/ that imports aiohttp, as an HTTP *client* (the server side stays
in serving/). Names are resolved by `GuardedResolver`, and aiohttp connects to exactly the
addresses it returned, so there is no second lookup for DNS rebinding to change; IP literals
never reach a resolver and are checked before the request. Redirects are followed by hand, each
hop checked like the first. Proxies from the environment are not used."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from calculators.media.policy import MediaPolicy, check_address, literal_address, normalize_host, refuse, too_many_bytes

REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
_HEADERS = {"Accept": "image/*", "Accept-Encoding": "identity", "User-Agent": "ovserve"}


def _named_locally(host: str) -> bool:
    host = normalize_host(host)
    return host == "localhost" or host.endswith(".localhost")


class GuardedResolver(AbstractResolver):
    """getaddrinfo, then the whole answer refused if any address breaks the policy (a name that
    resolves to both a public and a metadata address is not one to trust)."""

    def __init__(self, policy: MediaPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner or aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            check_address(ipaddress.ip_address(result["host"]), host, self._policy, named_locally=_named_locally(host))
        return results

    async def close(self) -> None:
        await self._inner.close()


class HttpFetcher:
    """Fetches image bytes over one lazily made client session (made in the running loop; `aclose` it)."""

    def __init__(self, policy: MediaPolicy) -> None:
        self._policy = policy
        self._session: aiohttp.ClientSession | None = None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self._policy), use_dns_cache=False)
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),  # no cookies carried from one hop or image to the next
                trust_env=False,
                timeout=aiohttp.ClientTimeout(total=None),  # fetch() bounds the whole fetch, redirects included
                headers=_HEADERS,
            )
        return self._session

    async def fetch(self, url: str) -> bytes:
        policy = self._policy
        try:
            current = URL(url)
        except ValueError:
            raise refuse("image_url is not a valid URL") from None
        try:
            async with asyncio.timeout(policy.fetch_timeout_s):
                for hop in range(policy.max_redirects + 1):
                    self._check(current, redirected=hop > 0)
                    async with self._client().get(current, allow_redirects=False) as response:
                        if response.status in REDIRECTS:
                            current = _next_hop(current, response)
                            continue
                        if response.status != 200:
                            raise refuse(f"image_url host '{current.host}' answered HTTP {response.status}")
                        return await _read_capped(response, policy)
                raise refuse(f"image_url redirects more than --max_media_redirects ({policy.max_redirects}) times")
        except TimeoutError:
            raise refuse(
                f"image_url host '{current.host}' did not send the image within --media_fetch_timeout ({policy.fetch_timeout_s:g} s)"
            ) from None
        except aiohttp.ClientError as exc:
            raise refuse(f"image_url host '{current.host}' could not be fetched: {_reason(exc)}") from None

    def _check(self, url: URL, *, redirected: bool) -> None:
        what = "image_url redirects to" if redirected else "image_url has"
        if url.scheme not in ("http", "https"):
            raise refuse(f"{what} scheme '{url.scheme[:20]}'; only http and https are fetched")
        if url.user is not None or url.password is not None:
            raise refuse(f"{what} credentials in the URL, which are refused")
        host = url.raw_host
        if not host:
            raise refuse(f"{what} no host")
        if not self._policy.host_allowed(host):
            raise refuse(f"{what} host '{url.host}', which is not in --allowed_media_domains")
        address = literal_address(host)
        if address is not None:  # never resolved, so checked here; the operator named it literally
            check_address(address, host, self._policy, named_locally=True)


def _next_hop(current: URL, response: aiohttp.ClientResponse) -> URL:
    location = response.headers.get("Location")
    if not location:
        raise refuse(f"image_url host '{current.host}' redirects without a Location")
    try:
        return current.join(URL(location))
    except ValueError:
        raise refuse(f"image_url host '{current.host}' redirects to an invalid URL") from None


async def _read_capped(response: aiohttp.ClientResponse, policy: MediaPolicy) -> bytes:
    """The body, refused as soon as it is known to exceed --max_image_bytes (Content-Length first,
    then the bytes counted, since a server may send no length or a false one)."""
    if response.content_length is not None and response.content_length > policy.max_image_bytes:
        raise too_many_bytes(policy)
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > policy.max_image_bytes:
            raise too_many_bytes(policy)
    return bytes(body)


def _reason(exc: aiohttp.ClientError) -> str:
    """A short cause without aiohttp's text, which names the resolved address (internal detail)."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "its name does not resolve"
    if isinstance(exc, aiohttp.ClientSSLError):
        return "TLS failed (certificate or handshake)"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "the connection failed"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return "the connection closed before the image was complete"
    if isinstance(exc, aiohttp.ClientResponseError):
        return "its answer is not valid HTTP"
    return "the request failed"

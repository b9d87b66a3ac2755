"""MediaPolicy's checks alone: allowed hosts (exact and *.domain), the address rules, and the
guarded resolver (given answers from a stand-in DNS) inside a real aiohttp session."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from calculators.media.fetch import GuardedResolver
from calculators.media.policy import MediaPolicy, check_address
from graphs.errors import InvalidRequestError


def test_hosts_match_exactly_or_under_a_wildcard() -> None:
    policy = MediaPolicy(allowed_domains=("Images.Example.COM.", "*.cdn.example", "127.0.0.1", "[::1]"))
    assert policy.allowed_domains == ("images.example.com", "*.cdn.example", "127.0.0.1", "::1")
    assert policy.host_allowed("images.example.com") and policy.host_allowed("IMAGES.example.com.")
    assert not policy.host_allowed("example.com") and not policy.host_allowed("evil-images.example.com")
    assert policy.host_allowed("a.cdn.example") and policy.host_allowed("a.b.cdn.example")
    assert not policy.host_allowed("cdn.example") and not policy.host_allowed("evilcdn.example")
    assert policy.host_allowed("127.0.0.1") and policy.host_allowed("0:0::1") and not policy.host_allowed("127.0.0.2")
    assert not MediaPolicy().host_allowed("images.example.com")  # default: none


@pytest.mark.parametrize(
    "entry",
    ["", "*", "a.*.example", "http://example.com", "example.com:8080", "bücher.example", "*.", "exa mple.com", "a..b", "*.127.0.0.1"],
)
def test_bad_domain_entries_are_refused_at_startup(entry: str) -> None:
    with pytest.raises(ValueError, match="--allowed_media_domains entry"):
        MediaPolicy(allowed_domains=(entry,))


def test_bad_limits_are_refused_at_startup() -> None:
    for bad in ({"max_image_bytes": 0}, {"max_image_pixels": -1}, {"fetch_timeout_s": 0}, {"max_redirects": -1}):
        with pytest.raises(ValueError):
            MediaPolicy(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="absolute"):
        MediaPolicy(allowed_local_path=Path("relative/images"))


REFUSED_ALWAYS = [
    "169.254.169.254",
    "169.254.1.1",
    "fe80::1",
    "fd00:ec2::254",
    "100.100.100.200",
    "::ffff:169.254.169.254",
    "0.0.0.0",
    "::",
    "224.0.0.1",
    "ff02::1",
    "240.0.0.1",
]
INTERNAL = ["127.0.0.1", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "fc00::1", "100.64.0.1", "::ffff:10.0.0.1", "64:ff9b::a00:1"]
PUBLIC = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"]


def check(address: str, *, named_locally: bool, allow_private: bool = False) -> None:
    policy = MediaPolicy(allow_private_addresses=allow_private)
    check_address(ipaddress.ip_address(address), "host.example", policy, named_locally=named_locally)


@pytest.mark.parametrize("address", REFUSED_ALWAYS)
def test_link_local_metadata_and_odd_addresses_need_the_private_flag(address: str) -> None:
    with pytest.raises(InvalidRequestError, match="--allow_private_media_addresses"):
        check(address, named_locally=True)
    check(address, named_locally=True, allow_private=True)


@pytest.mark.parametrize("address", INTERNAL)
def test_internal_addresses_only_when_named_so_or_flagged(address: str) -> None:
    with pytest.raises(InvalidRequestError, match="private or loopback"):
        check(address, named_locally=False)
    check(address, named_locally=True)
    check(address, named_locally=False, allow_private=True)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    check(address, named_locally=False)


class FixedDNS(AbstractResolver):
    """Answers every name with the given addresses: DNS an attacker controls, say."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=socket.AF_INET6 if ":" in a else socket.AF_INET, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        pass


async def test_a_name_resolving_to_metadata_or_private_addresses_is_refused_inside_aiohttp() -> None:
    policy = MediaPolicy(allowed_domains=("images.example",))
    for answer, rule in [(("93.184.216.34", "169.254.169.254"), "link-local"), (("10.0.0.7",), "private or loopback")]:
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(policy, FixedDNS(*answer)), use_dns_cache=False)
        async with aiohttp.ClientSession(connector=connector) as session:
            # the refusal comes out of the resolver unwrapped, before any connection is tried
            with pytest.raises(InvalidRequestError, match=rule):
                await session.get("http://images.example/cat.png")


async def test_localhost_is_named_locally() -> None:
    resolver = GuardedResolver(MediaPolicy(allowed_domains=("localhost",)), FixedDNS("127.0.0.1", "::1"))
    assert [r["host"] for r in await resolver.resolve("localhost", 80)] == ["127.0.0.1", "::1"]
    with pytest.raises(InvalidRequestError, match="private or loopback"):
        await resolver.resolve("intranet.example", 80)

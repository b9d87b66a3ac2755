"""What image_url may reach: the operator's policy and the checks on hosts and addresses.

Every refusal is an `InvalidRequestError` whose message names the rule (the CLI flag), so a client
learns which limit it hit; the loader adds the request field (`param`)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from graphs.errors import InvalidRequestError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MiB = 1024 * 1024
#: An 8K UHD frame (7680x4320, 33.2 MP) fits; decoded as RGB that is ~100 MB, already more than a
#: VLM's image processor keeps (it resizes to a few hundred pixels a side).
DEFAULT_MAX_IMAGE_PIXELS = 7680 * 4320

#: Cloud metadata services outside the link-local range (169.254.169.254 is link-local anyway):
#: AWS over IPv6, Alibaba, Azure's wire server, Oracle.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "168.63.129.16", "192.0.0.192")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")


def refuse(message: str) -> InvalidRequestError:
    """The error for one broken rule (raise it); the loader fills in `param`."""
    return InvalidRequestError(message)


def too_many_bytes(policy: MediaPolicy) -> InvalidRequestError:
    mib = policy.max_image_bytes / MiB
    shown = f"{mib:g} MiB" if mib >= 1 else f"{policy.max_image_bytes:,} bytes"
    return refuse(f"image larger than --max_image_bytes ({shown})")


@dataclass(frozen=True, slots=True)
class MediaPolicy:
    """Where images may come from and how big they may be; one per server, from its flags.

    `allowed_domains` holds exact host names or IP literals (case-insensitive, a trailing dot
    ignored); an entry `*.example.com` allows every subdomain of example.com, not example.com
    itself. Any port of an allowed host is allowed. Empty: no http(s) image is fetched."""

    allowed_domains: tuple[str, ...] = ()
    allowed_local_path: Path | None = None
    allow_private_addresses: bool = False
    max_image_bytes: int = 20 * MiB
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    fetch_timeout_s: float = 10.0
    max_redirects: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_domains", tuple(normalize_domain(d) for d in self.allowed_domains))
        if self.allowed_local_path is not None and not Path(self.allowed_local_path).is_absolute():
            raise ValueError(f"--allowed_local_media_path must be an absolute path, not {str(self.allowed_local_path)!r}")
        for name in ("max_image_bytes", "max_image_pixels", "fetch_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.max_redirects < 0:
            raise ValueError("max_redirects must be 0 or more")

    def host_allowed(self, host: str) -> bool:
        host = normalize_host(host)
        if _is_ip(host):  # an address is allowed only by itself, never by a *.domain entry
            return host in self.allowed_domains
        return any(host == d or (d.startswith("*.") and host.endswith(d[1:])) for d in self.allowed_domains)


def normalize_host(host: str) -> str:
    """Lower case, no trailing dot or IPv6 brackets, IP literals in their canonical form."""
    host = host.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host


def normalize_domain(entry: str) -> str:
    """An --allowed_media_domains entry, checked and normalized (ValueError names a bad one)."""
    domain = normalize_host(entry)
    name = domain.removeprefix("*.")
    if not entry.isascii():
        raise ValueError(f"--allowed_media_domains entry {entry!r}: give host names in ASCII (xn-- form for IDNs)")
    if not (_is_ip(domain) or (_HOST_NAME.fullmatch(name) and not _is_ip(name))):
        raise ValueError(f"--allowed_media_domains entry {entry!r}: a host name, an IP address or *.domain")
    return domain


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def literal_address(host: str) -> IPAddress | None:
    """The address when the URL's host is an IP literal, else None."""
    try:
        return ipaddress.ip_address(normalize_host(host))
    except ValueError:
        return None


def _embedded_ipv4(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one routes to (mapped, 6to4, NAT64), or the address itself."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour
        if inner is None and address in _NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:
            return inner
    return address


def check_address(address: IPAddress, host: str, policy: MediaPolicy, *, named_locally: bool) -> None:
    """Refuse connecting to `address` for `host`.

    Link-local, cloud metadata, unspecified, multicast and reserved addresses are refused unless
    --allow_private_media_addresses. Loopback and private addresses too, except when the operator
    named the host itself as local (`named_locally`: an allowed IP literal, or localhost): an
    allowed public name that resolves to an internal address is refused (DNS rebinding)."""
    if policy.allow_private_addresses:
        return
    target = _embedded_ipv4(address)
    where = f"image_url host '{host}'"
    if address in METADATA_ADDRESSES or target in METADATA_ADDRESSES or target.is_link_local:
        raise refuse(f"{where} leads to a link-local or cloud metadata address, refused unless --allow_private_media_addresses")
    if not target.is_loopback and (target.is_unspecified or target.is_multicast or target.is_reserved):  # ::1 is in reserved ::/8
        raise refuse(f"{where} leads to an unspecified, multicast or reserved address, refused unless --allow_private_media_addresses")
    if not target.is_global and not named_locally:
        raise refuse(
            f"{where} leads to a private or loopback address; allow it by its address (or localhost) in "
            "--allowed_media_domains, or set --allow_private_media_addresses"
        )

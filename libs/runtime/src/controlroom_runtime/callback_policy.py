"""Where callbacks may point: globally reachable http(s) addresses, plus what the operator
allow-lists.

Every address a host name resolves to must be global (``ipaddress``'s ``is_global``, and not
multicast or reserved), or fall in an allow-listed network, or the host itself must be
allow-listed. Link-local and cloud-metadata addresses are never allowed, allow-list or not.
:meth:`CallbackPolicy.vet` returns the addresses it checked, so the caller can connect to
exactly those: resolving the name again would let a second DNS answer (DNS rebinding) send the
request somewhere the policy never saw.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str], Awaitable[Sequence[IPAddress]]]
"""What a host name resolves to (the system's resolver unless another is given)."""

METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
# IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64, RFC 6052 and 8215):
# a gateway would forward them to that IPv4 address, so it is the one that must be global.
NAT64_PREFIXES = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


@dataclass(frozen=True)
class Vetted:
    """A URL the policy allows, and the addresses it allowed it at (connect to these only)."""

    url: str
    host: str
    addresses: tuple[IPAddress, ...]


@dataclass(frozen=True)
class Refused:
    code: str
    message: str


def unmapped(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) is the IPv4 address it maps."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in prefix for prefix in NAT64_PREFIXES):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Globally reachable unicast: not private, shared (100.64.0.0/10), loopback, link-local,
    unique-local, reserved, multicast or unspecified, nor an IPv6 form of such an address."""
    if not address.is_global or address.is_multicast or address.is_reserved:
        return False
    embedded = _embedded_ipv4(address)
    return embedded is None or is_public(embedded)


async def system_resolver(host: str) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    # An IPv6 answer may carry a zone ("fe80::1%eth0"); the address is what is judged.
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


class CallbackPolicy:
    def __init__(
        self,
        allow: Sequence[str],
        resolve_timeout: float = 2.0,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._networks: list[IPNetwork] = []
        self._hosts: set[str] = set()
        for entry in allow:
            try:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self._hosts.add(entry.lower())
        self._timeout = resolve_timeout
        self._resolve = resolver

    async def problem(self, url: str) -> tuple[str, str] | None:
        """``(code, message)`` when ``url`` may not be called back, else None."""
        verdict = await self.vet(url)
        return (verdict.code, verdict.message) if isinstance(verdict, Refused) else None

    async def vet(self, url: str) -> Vetted | Refused:
        """Resolve ``url``'s host once and judge every address it resolves to."""
        try:
            parts = urlsplit(url)
            scheme, host = parts.scheme, (parts.hostname or "").lower()
        except ValueError:  # e.g. an unclosed "[" of an IPv6 literal
            scheme, host = "", ""
        if scheme not in ("http", "https") or not host:
            return Refused("callback.scheme", "callbacks must be http(s) URLs with a host")
        if host in METADATA_HOSTS:
            return Refused("callback.metadata", f"{host} is a cloud metadata endpoint")
        try:
            resolved = await self._addresses(host)
        except (OSError, TimeoutError, UnicodeError):
            return Refused("callback.unresolvable", f"{host} does not resolve")
        if not resolved:
            return Refused("callback.unresolvable", f"{host} does not resolve")
        addresses = tuple(dict.fromkeys(unmapped(a) for a in resolved))
        for address in addresses:
            if address in METADATA_ADDRESSES or address.is_link_local:
                return Refused("callback.link_local", f"{host} is link-local or a metadata address")
        if host in self._hosts:
            return Vetted(url, host, addresses)
        for address in addresses:
            if not (self._allowed(address) or is_public(address)):
                return Refused(
                    "callback.private",
                    f"{host} resolves to {address}, which is not a public address; allow-list "
                    "it with CONTROLROOM_CALLBACK_ALLOWLIST",
                )
        return Vetted(url, host, addresses)

    def _allowed(self, address: IPAddress) -> bool:
        return any(address in network for network in self._networks)

    async def _addresses(self, host: str) -> Sequence[IPAddress]:
        try:
            return [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            pass
        return await asyncio.wait_for(self._resolve(host), self._timeout)

"""Where callbacks may point: public http(s) addresses, plus what the operator allow-lists.

Link-local and cloud-metadata addresses are never allowed, allow-list or not.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)


class CallbackPolicy:
    def __init__(self, allow: Sequence[str], resolve_timeout: float = 2.0) -> None:
        self._networks: list[IPNetwork] = []
        self._hosts: set[str] = set()
        for entry in allow:
            try:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self._hosts.add(entry.lower())
        self._timeout = resolve_timeout

    async def problem(self, url: str) -> tuple[str, str] | None:
        """``(code, message)`` when ``url`` may not be called back, else None."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host:
            return "callback.scheme", "callbacks must be http(s) URLs with a host"
        if host in METADATA_HOSTS:
            return "callback.metadata", f"{host} is a cloud metadata endpoint"
        try:
            addresses = await self._addresses(host)
        except (OSError, TimeoutError):
            return "callback.unresolvable", f"{host} does not resolve"
        for address in addresses:
            if address in METADATA_ADDRESSES or address.is_link_local:
                return "callback.link_local", f"{host} is link-local or a metadata address"
        if host in self._hosts:
            return None
        for address in addresses:
            if any(address in network for network in self._networks):
                continue
            if (
                address.is_loopback
                or address.is_private
                or address.is_reserved
                or (address.is_unspecified or address.is_multicast)
            ):
                return (
                    "callback.private",
                    f"{host} resolves to {address}, a private or loopback address; allow-list it "
                    "with CONTROLROOM_CALLBACK_ALLOWLIST",
                )
        return None

    async def _addresses(self, host: str) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            pass
        loop = asyncio.get_running_loop()
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), self._timeout
        )
        return [ipaddress.ip_address(info[4][0]) for info in infos]

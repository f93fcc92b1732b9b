"""The callback policy: only globally reachable addresses, unless allow-listed, and the addresses
it vetted are the ones handed back to connect to."""

from __future__ import annotations

import ipaddress

import pytest

from controlroom_runtime.callback_policy import CallbackPolicy, Refused, Vetted


@pytest.mark.parametrize(
    "url",
    [
        "http://100.64.0.1/hook",  # shared address space (carrier-grade NAT)
        "http://100.127.255.254/hook",
        "http://127.0.0.1:9000/hook",
        "http://10.1.2.3/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.1/hook",
        "http://198.18.0.1/hook",  # benchmarking
        "http://192.0.2.1/hook",  # documentation
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",  # multicast
        "http://240.0.0.1/hook",  # reserved
        "http://[::1]/hook",
        "http://[::]/hook",
        "http://[fc00::1]/hook",  # unique local
        "http://[fd12:3456::1]/hook",
        "http://[ff02::1]/hook",  # multicast
        "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
        "http://[::ffff:10.0.0.1]/hook",
        "http://[::ffff:100.64.0.1]/hook",
        "http://[::7f00:1]/hook",  # IPv4-compatible (deprecated)
        "http://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
        "http://[2002:a00:1::1]/hook",  # 6to4 of 10.0.0.1
        "http://[2001:db8::1]/hook",
    ],
)
async def test_every_non_global_address_is_refused(url: str) -> None:
    verdict = await CallbackPolicy([]).vet(url)
    assert isinstance(verdict, Refused) and verdict.code == "callback.private", verdict
    assert await CallbackPolicy([]).problem(url) == (verdict.code, verdict.message)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://169.254.10.10/x",
        "http://[fe80::1]/x",
        "http://[::ffff:169.254.169.254]/latest",  # the metadata address, IPv4-mapped
        "http://[fd00:ec2::254]/latest",
        "http://100.100.100.200/latest",
    ],
)
async def test_link_local_and_metadata_addresses_are_refused_even_when_allow_listed(
    url: str,
) -> None:
    policy = CallbackPolicy(["0.0.0.0/0", "::/0", "169.254.0.0/16", "fe80::/10"])
    verdict = await policy.vet(url)
    assert isinstance(verdict, Refused) and verdict.code == "callback.link_local", verdict


@pytest.mark.parametrize(
    ("url", "allow", "address"),
    [
        ("http://127.0.0.1:9000/hook", ["127.0.0.0/8"], "127.0.0.1"),
        ("http://[::ffff:127.0.0.1]:9000/hook", ["127.0.0.0/8"], "127.0.0.1"),
        ("http://100.64.1.2/hook", ["100.64.0.0/10"], "100.64.1.2"),
        ("http://[::1]/hook", ["::1/128"], "::1"),
        ("http://10.0.0.7/hook", ["10.0.0.7"], "10.0.0.7"),
        ("http://8.8.8.8/hook", [], "8.8.8.8"),
        ("https://[2001:4860:4860::8888]/hook", [], "2001:4860:4860::8888"),
    ],
)
async def test_allowed_urls_come_back_with_the_addresses_to_connect_to(
    url: str, allow: list[str], address: str
) -> None:
    verdict = await CallbackPolicy(allow).vet(url)
    assert isinstance(verdict, Vetted), verdict
    assert verdict.addresses == (ipaddress.ip_address(address),)
    assert await CallbackPolicy(allow).problem(url) is None


async def test_an_allow_listed_host_name_is_vetted_with_what_it_resolves_to() -> None:
    verdict = await CallbackPolicy(["localhost"]).vet("http://LocalHost:8080/x")
    assert isinstance(verdict, Vetted) and verdict.host == "localhost"
    assert verdict.addresses and all(a.is_loopback for a in verdict.addresses)
    refused = await CallbackPolicy([]).vet("http://localhost:8080/x")
    assert isinstance(refused, Refused) and refused.code == "callback.private"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://example.com/x", "callback.scheme"),
        ("http:///x", "callback.scheme"),
        ("http://[::1/x", "callback.scheme"),
        ("http://metadata.google.internal/x", "callback.metadata"),
        ("http://no-such-host.invalid/x", "callback.unresolvable"),
    ],
)
async def test_urls_that_cannot_be_called_are_refused_with_a_reason(url: str, code: str) -> None:
    verdict = await CallbackPolicy(["metadata.google.internal"]).vet(url)
    assert isinstance(verdict, Refused) and verdict.code == code, verdict

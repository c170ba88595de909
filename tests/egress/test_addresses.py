"""Only public addresses are reachable; the reason an agent is given says why in plain words."""

from __future__ import annotations

import ipaddress

import pytest

from nanoclaw_app.egress.addresses import NotFound, Refused, resolve


@pytest.mark.parametrize(("host", "words"), [
    ("127.0.0.1", "this computer itself"),
    ("::1", "this computer itself"),
    ("10.1.2.3", "home network"),
    ("172.16.0.1", "home network"),
    ("192.168.1.1", "home network"),
    ("100.64.0.1", "home network"),
    ("fd00::1", "home network"),
    ("::ffff:10.0.0.1", "home network"),
    ("64:ff9b::a00:1", "home network"),
    ("169.254.169.254", "link-local"),
    ("fe80::1", "link-local"),
    ("0.0.0.0", "not an address on the internet"),
    ("224.0.0.251", "not an address on the internet"),
    ("ff02::1", "not an address on the internet"),
    ("240.0.0.1", "not an address on the internet"),
    ("localhost", "localhost points to"),
])
async def test_addresses_outside_the_internet_are_refused_with_a_plain_reason(host: str, words: str) -> None:
    with pytest.raises(Refused, match=words):
        await resolve(host, 443)


async def test_public_addresses_pass_and_are_what_the_proxy_connects_to() -> None:
    assert await resolve("8.8.8.8", 443) == ["8.8.8.8"]
    assert await resolve("2606:4700:4700::1111", 443) == ["2606:4700:4700::1111"]
    assert await resolve("::ffff:8.8.8.8", 443) == ["::ffff:8.8.8.8"]


async def test_this_computers_own_public_address_is_refused() -> None:
    with pytest.raises(Refused, match="this computer's own"):
        await resolve("8.8.8.8", 443, own=[ipaddress.ip_address("8.8.8.8")])


async def test_an_exception_lifts_the_check_for_exactly_that_host_and_port() -> None:
    assert await resolve("127.0.0.1", 8443, exceptions={"127.0.0.1:8443"}) == ["127.0.0.1"]
    with pytest.raises(Refused):
        await resolve("127.0.0.1", 8444, exceptions={"127.0.0.1:8443"})


async def test_a_name_that_does_not_resolve_is_not_found() -> None:
    with pytest.raises(NotFound, match="could not find"):
        await resolve("no-such-host.invalid", 443)

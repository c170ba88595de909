"""Which addresses an agent may reach through the proxy: the public internet only, never the home network.

The check runs on the addresses a name resolves to, and the proxy connects to the address it checked, so a name that
resolves to a private address (or changes its answer between two lookups) cannot get through. A name is refused when
*any* of its addresses is not public: an agent must not be able to pick a name that points partly inside.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Collection

log = logging.getLogger(__name__)

IP = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_RFC1918 = tuple(ipaddress.ip_network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_HOME = "is on your home network, which agents may not reach"


class Refused(ValueError):
    """The destination is off limits; ``str()`` is a plain reason the agent is shown."""


class NotFound(OSError):
    """The name does not resolve (the agent gets a 502 with this reason)."""


def why_refused(ip: IP, own: Collection[IP] = ()) -> str:
    """A plain reason why ``ip`` is off limits, or empty when it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            reason = why_refused(embedded, own)
            if reason:
                return reason
            if ip.ipv4_mapped is not None:
                return ""
    if ip in own:
        return "is one of this computer's own addresses, which agents may not reach"
    if ip.is_loopback:
        return "is this computer itself, which agents may not reach"
    if ip.is_link_local:
        return "is a link-local address (like a cloud metadata service), which agents may not reach"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return "is not an address on the internet, so agents may not reach it"
    if ip in _CGNAT or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local):
        return _HOME
    if ip.is_private:
        is_home = isinstance(ip, ipaddress.IPv6Address) or any(ip in net for net in _RFC1918)
        return _HOME if is_home else "is not an address on the internet, so agents may not reach it"
    if not ip.is_global:
        return "is not an address on the internet, so agents may not reach it"
    return ""


async def resolve(host: str, port: int, *, exceptions: Collection[str] = (), own: Collection[IP] = ()) -> list[str]:
    """The checked addresses to connect to for ``host:port``, in the resolver's order.

    Raises ``Refused`` when any of them is off limits (unless ``host:port`` is in ``exceptions``, which only tests
    use for their fakes on 127.0.0.1) and ``NotFound`` when the name does not resolve.
    """
    try:
        ipaddress.ip_address(host)
        addresses = [host]  # a plain address needs no lookup (nor a thread for one)
    except ValueError:
        addresses = await _lookup(host, port)
    if not addresses:
        raise NotFound(f"could not find {host}: the name has no address")
    if f"{host}:{port}" in exceptions:
        return addresses
    for address in addresses:
        reason = why_refused(ipaddress.ip_address(address.partition("%")[0]), own)
        if reason:
            raise Refused(f"{address} {reason}" if address == host else
                          f"{host} points to {address}, and {address} {reason}")
    return addresses


async def _lookup(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as err:
        raise NotFound(f"could not find {host}: the name does not resolve") from err
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def own_addresses() -> frozenset[IP]:
    """This computer's own addresses that are public (private ones are refused anyway): its name's and its routes'.

    Found without sending anything: a UDP socket "connected" to a public address only picks the outgoing interface.
    """
    found: set[IP] = set()
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(2):  # a name missing from /etc/hosts may wait for a DNS server that never answers
            infos = await loop.getaddrinfo(socket.gethostname(), None, type=socket.SOCK_STREAM)
        for info in infos:
            found.add(ipaddress.ip_address(str(info[4][0]).partition("%")[0]))
    except (OSError, UnicodeError, TimeoutError) as err:
        log.debug("egress: this computer's name does not resolve (%s)", err)
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.connect((probe, 9))
                found.add(ipaddress.ip_address(sock.getsockname()[0].partition("%")[0]))
        except OSError:
            continue  # no route for that family
    return frozenset(ip for ip in found if ip.is_global)

"""Which container is asking, where a listener is a host port rather than a socket mounted into one container.

On a Podman machine (macOS/Windows) each container's egress listener is a port on the host's loopback, reachable by
every program there and every container in the VM. So each listener has a random token, given to its container only
as the password in its proxy address (``http://nanoclaw:<token>@host:port``, which curl, pip, Python and Node send as
``Proxy-Authorization: Basic``); a connection without it cannot use that container's sites or credentials.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets

from nanoclaw_app.egress.http1 import Headers, values

USER = "nanoclaw"


def new_token() -> str:
    """A token for one listener (URL-safe, so it sits in a proxy address without escaping)."""
    return secrets.token_urlsafe(24)


def proxy_url(host: str, port: int, token: str) -> str:
    """The proxy address a container is given: its token travels as the password."""
    return f"http://{USER}:{token}@{host}:{port}"


def proves(headers: Headers, token: str) -> bool:
    """Whether exactly one ``Proxy-Authorization: Basic`` header carries ``token`` as its password (any user)."""
    found = values(headers, b"proxy-authorization")
    if len(found) != 1:
        return False
    scheme, _, encoded = found[0].strip().partition(b" ")
    if scheme.lower() != b"basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    _, colon, password = decoded.partition(b":")
    return bool(colon) and hmac.compare_digest(password, token.encode("ascii"))

"""The install CA: kept across restarts, replaced when damaged, and its leaves pass strict default verification."""

from __future__ import annotations

import asyncio
import logging
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from nanoclaw_app.egress.ca import CERT_FILE, KEY_FILE, EgressCA


def test_the_ca_is_kept_privately_and_loaded_again(tmp_path: Path) -> None:
    folder = tmp_path / "egress-ca"
    first = EgressCA(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / KEY_FILE).stat().st_mode) == 0o600
    assert EgressCA(folder).cert_pem == first.cert_pem
    cert = x509.load_pem_x509_certificate(first.cert_pem)
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length == 0
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    first.context_for("api.example.com")
    assert sorted(path.name for path in folder.iterdir()) == sorted([CERT_FILE, KEY_FILE])  # leaves: memory only


@pytest.mark.parametrize("damaged", [KEY_FILE, CERT_FILE])
def test_a_damaged_ca_is_replaced_and_said_so(tmp_path: Path, damaged: str, caplog: pytest.LogCaptureFixture) -> None:
    first = EgressCA(tmp_path)
    (tmp_path / damaged).write_bytes(b"-----BEGIN garbage")
    with caplog.at_level(logging.WARNING):
        second = EgressCA(tmp_path)
    assert second.cert_pem != first.cert_pem
    assert EgressCA(tmp_path).cert_pem == second.cert_pem
    assert len([r for r in caplog.records if "cannot be used" in r.getMessage()]) == 1


def test_a_key_from_another_ca_is_not_used(tmp_path: Path) -> None:
    first = EgressCA(tmp_path / "a")
    EgressCA(tmp_path / "b")
    (tmp_path / "a" / KEY_FILE).write_bytes((tmp_path / "b" / KEY_FILE).read_bytes())
    assert EgressCA(tmp_path / "a").cert_pem != first.cert_pem


@pytest.mark.parametrize("host", ["api.example.com", "127.0.0.1", "::1"])
async def test_leaves_pass_strict_default_verification(tmp_path: Path, host: str) -> None:
    ca = EgressCA(tmp_path)
    served = ca.context_for(host)
    assert ca.context_for(host) is served  # one context per host
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=served)
    port = server.sockets[0].getsockname()[1]
    verify = ssl.create_default_context(cadata=ca.cert_pem.decode())
    verify.verify_flags |= ssl.VERIFY_X509_STRICT  # what Python 3.13 turns on by default
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=verify, server_hostname=host)
        assert writer.get_extra_info("ssl_object").selected_alpn_protocol() in (None, "http/1.1")
        writer.close()
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection("127.0.0.1", port, ssl=verify, server_hostname="other.example.com")
    finally:
        server.close()
        await server.wait_closed()

"""The install's own certificate authority, and the per-host certificates the proxy shows agents it intercepts.

The proxy terminates TLS only for hosts that have a credential, so it must present a certificate for that host the
agent's tools trust: one signed by a CA made once per install and added to the agent's trust store. The CA key never
leaves the host (a 0600 file in a 0700 folder outside every mount). Leaves are cheap (one signature), so they live in
memory only and share one key, made per process; each host gets one cached ``ssl.SSLContext``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import ssl
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger(__name__)

CERT_FILE = "egress-ca.crt"
KEY_FILE = "egress-ca.key"
CA_DAYS = 3650
LEAF_DAYS = 30
LEAF_REFRESH_SECONDS = 24 * 3600.0
"""A cached leaf is remade after a day, long before its 30 days run out (the host may run for weeks)."""
CACHE_SIZE = 512
"""Hosts with a cached context; a wildcard credential could otherwise make the agent fill memory with subdomains."""

_CA_USAGE = x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
                          decipher_only=False)
_LEAF_USAGE = x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False, content_commitment=False,
                            key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
                            decipher_only=False)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class EgressCA:
    """The CA (loaded or made in ``folder``) and a cache of leaf contexts, one per host."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._cert, self._key = _load_or_make(folder)
        self.cert_pem = self._cert.public_bytes(serialization.Encoding.PEM)
        """The CA certificate, for the agents' trust store."""
        self._leaf_key = ec.generate_private_key(ec.SECP256R1())
        self._leaf_key_pem = self._leaf_key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption())
        ca_ski = self._cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        self._aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski)
        self._leaf_ski = x509.SubjectKeyIdentifier.from_public_key(self._leaf_key.public_key())
        self._contexts: OrderedDict[str, tuple[float, ssl.SSLContext]] = OrderedDict()

    def context_for(self, host: str) -> ssl.SSLContext:
        """A server context presenting a certificate for ``host`` (a name or an IP address), made once and cached."""
        host = host.lower()
        cached = self._contexts.get(host)
        now = time.monotonic()
        if cached is not None and now - cached[0] < LEAF_REFRESH_SECONDS:
            self._contexts.move_to_end(host)
            return cached[1]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])  # the intercepting side speaks HTTP/1.1 only; clients fall back
        # ssl loads a certificate chain only from a file: a private temporary one in the CA's folder, gone at once.
        fd, name = tempfile.mkstemp(dir=self._folder, prefix="leaf-", suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(self.leaf_pem(host) + self._leaf_key_pem)
            context.load_cert_chain(name)
        finally:
            Path(name).unlink(missing_ok=True)
        self._contexts[host] = (now, context)
        self._contexts.move_to_end(host)
        while len(self._contexts) > CACHE_SIZE:
            self._contexts.popitem(last=False)
        return context

    def leaf_pem(self, host: str) -> bytes:
        """A new certificate for ``host`` signed by the CA (serverAuth, 30 days)."""
        try:
            san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            san = x509.DNSName(host)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host[:64])]))
            .issuer_name(self._cert.subject)
            .public_key(self._leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - dt.timedelta(days=1))
            .not_valid_after(_now() + dt.timedelta(days=LEAF_DAYS))
            .add_extension(x509.SubjectAlternativeName([san]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_LEAF_USAGE, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(self._aki, critical=False)
            .add_extension(self._leaf_ski, critical=False)
            .sign(self._key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM)


def _load_or_make(folder: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The CA kept in ``folder``; a new one when there is none, or the old one cannot be used."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    cert_file, key_file = folder / CERT_FILE, folder / KEY_FILE
    if cert_file.exists() or key_file.exists():
        try:
            return _load(cert_file, key_file)
        except (OSError, ValueError, TypeError) as err:
            log.warning("the egress certificate authority in %s cannot be used (%s); making a new one, so agent "
                        "containers must be restarted to trust it", folder, err)
    cert, key = _make()
    _write(key_file, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()), 0o600)
    _write(cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    log.info("made a new egress certificate authority in %s", folder)
    return cert, key


def _load(cert_file: Path, key_file: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the key is not an EC key")
    if cert.public_key() != key.public_key():
        raise ValueError("the certificate and the key do not belong together")
    if cert.not_valid_after_utc < _now() + dt.timedelta(days=LEAF_DAYS):
        raise ValueError("the certificate expires within a month")
    cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)  # raises ExtensionNotFound (a ValueError)
    return cert, key


def _make() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "NanoClaw egress CA"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "NanoClaw (this install only)")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(days=1))
        .not_valid_after(_now() + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write by a private temporary file and a rename, so a crash never leaves half a key."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        Path(name).chmod(mode)
        Path(name).replace(path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise

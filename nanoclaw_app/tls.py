"""HTTPS for LAN access: a self-signed certificate made once per install, and its fingerprint to check it by.

No public authority can vouch for a computer on a home network, so the app makes its own certificate. A phone or
browser warns the first time; the owner compares the SHA-256 fingerprint it shows with the one in Settings and accepts
it. From then on the password and everything else cross the network encrypted. The window on this computer keeps
plain HTTP on 127.0.0.1, which never leaves the machine.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

log = logging.getLogger(__name__)

CERT_FILE = "lan-https.crt"
KEY_FILE = "lan-https.key"
VALID_DAYS = 825
"""The longest validity Apple devices accept for a certificate a person trusts by hand."""
RENEW_DAYS = 30
"""A certificate closer than this to its end is replaced at start (its fingerprint changes; Settings shows it)."""


@dataclass(frozen=True)
class Certificate:
    """The files uvicorn serves and the fingerprint a person checks."""

    cert_file: Path
    key_file: Path
    fingerprint: str


def fingerprint_of(pem: bytes) -> str:
    """SHA-256 of the certificate, as browsers show it (``AB:CD:…``)."""
    digest = x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256())
    return ":".join(f"{byte:02X}" for byte in digest)


def read_certificate(home: Path) -> Certificate | None:
    """The install's certificate, or None when none was made yet (or it cannot be read)."""
    cert_file, key_file = home / CERT_FILE, home / KEY_FILE
    try:
        pem = cert_file.read_bytes()
        if not key_file.is_file():
            return None
        return Certificate(cert_file, key_file, fingerprint_of(pem))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        log.warning("the LAN HTTPS certificate %s cannot be read (%s); a new one will be made", cert_file, err)
        return None


def ensure_certificate(home: Path) -> Certificate:
    """The install's certificate, made now when missing, unreadable or about to run out."""
    current = read_certificate(home)
    if current is not None:
        ends = x509.load_pem_x509_certificate(current.cert_file.read_bytes()).not_valid_after_utc
        if ends - datetime.now(UTC) > timedelta(days=RENEW_DAYS):
            return current
        log.info("the LAN HTTPS certificate ends on %s; making a new one", ends.date())
    return _make_certificate(home)


def _make_certificate(home: Path) -> Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = socket.gethostname() or "nanoclaw"
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"NanoClaw on {name}"[:64])])
    alt_names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    if _is_dns_name(name):
        alt_names += [x509.DNSName(name), x509.DNSName(f"{name}.local")]
    address = lan_address()
    if address is not None:
        alt_names.append(x509.IPAddress(ipaddress.ip_address(address)))
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    _write_private(home / KEY_FILE, key_pem)
    _write_private(home / CERT_FILE, cert_pem)
    made = Certificate(home / CERT_FILE, home / KEY_FILE, fingerprint_of(cert_pem))
    log.info("made a LAN HTTPS certificate, SHA-256 fingerprint %s", made.fingerprint)
    return made


def _write_private(path: Path, data: bytes) -> None:
    """Write through a 0600 temporary file and rename it over ``path``: the key is never readable by others."""
    temp = path.with_name(path.name + ".tmp")
    temp.unlink(missing_ok=True)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    temp.replace(path)


def _is_dns_name(name: str) -> bool:
    return all(part and part.replace("-", "").isalnum() and part.isascii() for part in name.split("."))


def lan_address() -> str | None:
    """This computer's address on its network (the one its default route uses), or None when there is none.

    Connecting a UDP socket sends nothing; it only asks the kernel which source address it would use.
    """
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere real
        address = str(probe.getsockname()[0])
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith(("0.", "127.")) else address

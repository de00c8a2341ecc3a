#!/usr/bin/env python3
"""The local certificate authority of the stack: the Entra ID emulator serves TLS with a server
certificate this CA issues, and Envoy and the service clients trust the CA file.

Everything lives in `stack/tls/` (git-ignored), created on first use and reused afterwards:

  ca.crt       the CA certificate: what clients and Envoy trust (`REQUESTS_CA_BUNDLE`, `trusted_ca`)
  ca.key       the CA's private key (0600), kept to reissue the server certificate
  server.crt   the emulator's certificate, SANs `localhost`, `127.0.0.1`, `::1`; chain = server + CA
  server.key   its private key (0600)

`python stack/local_ca.py` creates what is missing and prints the CA file's path;
`python stack/local_ca.py --dir DIR --names a,b` makes another CA (the tests use one that Envoy
must not trust). The CA's name constraints limit its DNS names to the server's (`localhost`), so
trusting it cannot let it vouch for a real host name.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import ipaddress
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_DIR = Path(__file__).resolve().parent / "tls"
SERVER_NAMES = ("localhost", "127.0.0.1", "::1")
CA_DAYS = 3650
SERVER_DAYS = 397
# A server certificate closer than this to its end is reissued at the next start.
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class LocalTls:
    """Paths of one CA directory's files."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, private: bool = False) -> None:
    """Writes atomically, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _name_constraints(names: tuple[str, ...]) -> x509.NameConstraints:
    """The CA may vouch for the server's DNS names only (`localhost`), never for a real host
    name. IP addresses are left unconstrained: BoringSSL (Envoy) refuses a chain whose CA
    carries iPAddress constraints ("unsupported name constraint type")."""
    dns = [x509.DNSName(n) for n in names if not isinstance(_general_name(n), x509.IPAddress)]
    return x509.NameConstraints(permitted_subtrees=dns, excluded_subtrees=None)


def _make_ca(tls: LocalTls, names: tuple[str, ...]) -> None:
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jira-entra-guard local CA"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "jira-entra-guard local stack")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(_name_constraints(names), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(tls.ca_key, _key_pem(key), private=True)
    _write(tls.ca_cert, cert.public_bytes(serialization.Encoding.PEM))


def _make_server(tls: LocalTls, names: tuple[str, ...]) -> None:
    ca_cert = x509.load_pem_x509_certificate(tls.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(tls.ca_key.read_bytes(), password=None)
    key = _new_key()
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(min(now + dt.timedelta(days=SERVER_DAYS), ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=True, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(tls.server_key, _key_pem(key), private=True)
    chain = cert.public_bytes(serialization.Encoding.PEM) + tls.ca_cert.read_bytes()
    _write(tls.server_cert, chain)


def _server_is_current(tls: LocalTls, names: tuple[str, ...]) -> bool:
    if not (tls.server_cert.exists() and tls.server_key.exists()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(tls.server_cert.read_bytes())
        ca = x509.load_pem_x509_certificate(tls.ca_cert.read_bytes())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    return (cert.issuer == ca.subject
            and cert.not_valid_after_utc - RENEW_BEFORE > _now()
            and all(_general_name(n) in sans for n in names))


def ensure(directory: Path | str = DEFAULT_DIR, names: tuple[str, ...] = SERVER_NAMES) -> LocalTls:
    """Creates the CA and the server certificate when missing (or the server certificate when
    it is near its end or lacks a name); returns the paths. Safe to call from several processes
    at once."""
    tls = LocalTls(Path(directory))
    tls.directory.mkdir(parents=True, exist_ok=True)
    with open(tls.directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (tls.ca_cert.exists() and tls.ca_key.exists()):
            _make_ca(tls, names)
            tls.server_cert.unlink(missing_ok=True)
        if not _server_is_current(tls, names):
            _make_server(tls, names)
    return tls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Create (once) the local stack's CA and the "
                                                 "Entra ID emulator's server certificate.")
    parser.add_argument("--dir", default=str(DEFAULT_DIR), help="directory (default: %(default)s)")
    parser.add_argument("--names", default=",".join(SERVER_NAMES),
                        help="server certificate names, comma-separated (default: %(default)s)")
    args = parser.parse_args(argv)
    names = tuple(n.strip() for n in args.names.split(",") if n.strip())
    if not names:
        parser.error("--names needs at least one name")
    print(ensure(args.dir, names).ca_cert)
    return 0


if __name__ == "__main__":
    sys.exit(main())

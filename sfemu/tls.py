"""TLS material for the emulator: a private CA and a leaf certificate it signs.

Clients such as simple-salesforce force `https://`, so the emulator must speak TLS with a
certificate that `requests` can verify. A self-signed leaf would need every client to disable
verification; instead a small CA is generated once per state directory (users trust its PEM via
`REQUESTS_CA_BUNDLE` or `verify=`), and the leaf is re-issued whenever the served names change.
Modern OpenSSL rejects CAs without keyCertSign and chains without SKI/AKI, hence the extensions.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Names every client may dial: local addresses and the hosts tap/airbyte hard-code (via a proxy).
DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1", "login.salesforce.com", "test.salesforce.com",
                 "*.my.salesforce.com", "*.salesforce.com")
CA_DAYS = 3650
LEAF_DAYS = 825  # the longest validity Apple/Chrome accept for a leaf


@dataclass(frozen=True)
class TlsFiles:
    """PEM paths uvicorn serves with and clients verify against (ca_path None: user-supplied cert)."""

    cert_path: Path
    key_path: Path
    ca_path: Path | None


def server_names(hostnames: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The leaf's subject alternative names: the defaults plus the user's, without duplicates."""
    names: list[str] = []
    for name in (*DEFAULT_NAMES, *hostnames):
        name = name.strip().lower()
        if name and name not in names:
            names.append(name)
    return names


def ensure_tls(state_dir: Path, hostnames: list[str] | tuple[str, ...] = (),
               cert: Path | None = None, key: Path | None = None) -> TlsFiles:
    """Use the user's cert/key, or create (once) the CA and (when names change) the leaf."""
    if cert or key:
        if not (cert and key):
            raise ValueError("--tls-cert and --tls-key must be given together")
        for path in (cert, key):
            if not Path(path).is_file():
                raise ValueError(f"TLS file not found: {path}")
        return TlsFiles(Path(cert), Path(key), None)
    tls_dir = state_dir / "tls"
    tls_dir.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _load_or_create_ca(tls_dir)
    names = server_names(hostnames)
    names_file = tls_dir / "names.json"
    leaf_cert, leaf_key = tls_dir / "server.pem", tls_dir / "server-key.pem"
    current = json.loads(names_file.read_text()) if names_file.exists() else None
    if current != names or not leaf_cert.exists() or not leaf_key.exists():
        key_obj = ec.generate_private_key(ec.SECP256R1())
        _write(leaf_key, _key_pem(key_obj), private=True)
        leaf = _issue_leaf(key_obj, ca_key, ca_cert, names)
        _write(leaf_cert, leaf.public_bytes(serialization.Encoding.PEM))
        _write(names_file, json.dumps(names).encode())
    return TlsFiles(leaf_cert, leaf_key, tls_dir / "ca.pem")


def _load_or_create_ca(tls_dir: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    ca_pem, ca_key_pem = tls_dir / "ca.pem", tls_dir / "ca-key.pem"
    if ca_pem.exists() and ca_key_pem.exists():
        key = serialization.load_pem_private_key(ca_key_pem.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{ca_key_pem}: unexpected key type")
        return key, x509.load_pem_x509_certificate(ca_pem.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Replicator emulator"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "Replicator emulator local CA")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(ca_key_pem, _key_pem(key), private=True)
    _write(ca_pem, cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def _issue_leaf(key: ec.EllipticCurvePrivateKey, ca_key: ec.EllipticCurvePrivateKey,
                ca_cert: x509.Certificate, names: list[str]) -> x509.Certificate:
    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    now = datetime.now(UTC)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=LEAF_DAYS))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, private: bool = False) -> None:
    """Write atomically (a crash never leaves half a PEM); keys readable by the owner only."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)

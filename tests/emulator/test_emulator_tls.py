"""TLS of the emulator: the generated CA verifies the served leaf for every name clients dial,
the CA survives restarts while the leaf follows --hostname, and a user's own cert/key is served."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sfemu.client import emulator_session
from sfemu.launch import start_emulator, stop, wait_ready
from sfemu.tls import ensure_tls

TOKEN = "s3cret-control-token"


def _handshake(port: int, server_name: str, ca_path: str) -> dict[str, Any]:
    """Connect to 127.0.0.1 but verify the certificate as if we dialled `server_name`."""
    context = ssl.create_default_context(cafile=ca_path)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=server_name) as tls:
        return tls.getpeercert()


def _launch(tmp: Path, *extra: str) -> Iterator[dict[str, Any]]:
    process, ready = start_emulator(tmp / "state", 0, 20, 1, list(extra))
    try:
        yield wait_ready(process, ready, tmp / "state" / "emulator.log", timeout=180)
    finally:
        stop(process)


@pytest.fixture(scope="module")
def named_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A small sandbox emulator on a random port with extra certificate names and a control token."""
    yield from _launch(tmp_path_factory.mktemp("tls"), "--hostname", "backup.example.test",
                       "--hostname", "10.20.30.40", "--org-type", "sandbox", "--control-token", TOKEN)


def _port(info: dict[str, Any]) -> int:
    return int(info["base_url"].rsplit(":", 1)[1])


def test_port_zero_reports_the_real_port(named_emulator: dict[str, Any]) -> None:
    assert _port(named_emulator) > 0
    assert named_emulator["base_url"].startswith("https://127.0.0.1:")
    assert Path(named_emulator["ca_path"]).name == "ca.pem"


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "backup.example.test", "10.20.30.40",
                                  "login.salesforce.com", "test.salesforce.com", "acme.my.salesforce.com"])
def test_ca_verifies_the_leaf_for_every_name(named_emulator: dict[str, Any], name: str) -> None:
    cert = _handshake(_port(named_emulator), name, named_emulator["ca_path"])
    assert dict(x[0] for x in cert["issuer"])["commonName"] == "Replicator emulator local CA"


def test_unlisted_name_is_rejected(named_emulator: dict[str, Any]) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):
        _handshake(_port(named_emulator), "other.example.test", named_emulator["ca_path"])


def test_requests_verifies_with_the_ca_over_localhost(named_emulator: dict[str, Any]) -> None:
    session = emulator_session(named_emulator["base_url"], named_emulator["ca_path"])
    for host in ("127.0.0.1", "localhost"):
        url = f"https://{host}:{_port(named_emulator)}/_emulator/status"
        status = session.get(url, headers={"X-Emulator-Token": TOKEN}, timeout=30).json()
        assert status["org_type"] == named_emulator["org_type"] == "sandbox"


def test_control_token_is_required_when_set(named_emulator: dict[str, Any]) -> None:
    session = emulator_session(named_emulator["base_url"], named_emulator["ca_path"])
    url = f"{named_emulator['control_url']}/faults"
    for headers in ({}, {"X-Emulator-Token": "wrong"}):
        refused = session.put(url, json={"slow_ms": 5000}, headers=headers, timeout=30)
        assert refused.status_code == 401
        assert refused.json()[0]["errorCode"] == "INVALID_CONTROL_TOKEN"
    assert session.get(url, headers={"X-Emulator-Token": TOKEN}, timeout=30).json()["slow_ms"] == 0


def test_ca_is_kept_and_leaf_follows_the_hostnames(tmp_path: Path) -> None:
    first = ensure_tls(tmp_path, ["a.example"])
    ca, leaf = first.ca_path.read_bytes(), first.cert_path.read_bytes()
    assert ensure_tls(tmp_path, ["a.example"]).cert_path.read_bytes() == leaf  # nothing changed
    second = ensure_tls(tmp_path, ["b.example"])
    assert second.ca_path.read_bytes() == ca
    cert = x509.load_pem_x509_certificate(second.cert_path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "b.example" in names.get_values_for_type(x509.DNSName)
    assert "a.example" not in names.get_values_for_type(x509.DNSName)
    ca_cert = x509.load_pem_x509_certificate(ca)
    assert ca_cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    cert.verify_directly_issued_by(ca_cert)


def _self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "mine.pem", directory / "mine-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_user_supplied_certificate_is_served(tmp_path: Path) -> None:
    cert_path, key_path = _self_signed(tmp_path, "my-emulator.example.test")
    for info in _launch(tmp_path, "--tls-cert", str(cert_path), "--tls-key", str(key_path)):
        assert info["ca_path"] == str(cert_path)
        served = _handshake(_port(info), "my-emulator.example.test", str(cert_path))
        assert dict(x[0] for x in served["subject"])["commonName"] == "my-emulator.example.test"
        assert not (tmp_path / "state" / "tls" / "ca.pem").exists()

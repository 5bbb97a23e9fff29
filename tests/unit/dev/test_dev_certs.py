"""The dev CA (own and mkcert's) and leaf certificates: SANs, reuse and reissue, real TLS."""

from __future__ import annotations

import datetime as dt
import shutil
import ssl
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from stagecraft.dev.ca import ca_name
from stagecraft.dev.certs import (
    CA,
    CertError,
    ensure_ca,
    ensure_leaf,
    leaf_hostnames,
    normalize_hostnames,
    user_data_dir,
)

Handshake = Callable[[Path, Path, Path, str], None]
HOSTS = ["app.quickstart.localhost", "api.quickstart.localhost"]


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- the CA -----------------------------------------------------------------------------


def test_own_ca_is_created_once_with_a_private_key_and_reused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ca = ensure_ca(data, use_mkcert=False)
    assert (ca.source, ca.cert_path, ca.key_path) == (
        "stagecraft",
        data / "ca" / "ca.pem",
        data / "ca" / "ca-key.pem",
    )
    assert (mode(ca.key_path), mode(data / "ca")) == (0o600, 0o700)
    cert = load(ca.cert_path)
    assert ca.name == ca_name() and ca.name.startswith("Stagecraft local CA ")
    assert "@" in ca.name
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=3649) < lifetime < dt.timedelta(days=3652)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    again = ensure_ca(data, use_mkcert=False)
    assert again == ca  # same files, same fingerprint: reused across projects


def test_data_dir_follows_xdg_data_home(tmp_path: Path) -> None:
    assert user_data_dir({"XDG_DATA_HOME": str(tmp_path)}) == tmp_path / "stagecraft"
    assert user_data_dir({}) == Path.home() / ".local" / "share" / "stagecraft"
    ca = ensure_ca(environ={"XDG_DATA_HOME": str(tmp_path), "STAGECRAFT_CA": "own"})
    assert ca.cert_path == tmp_path / "stagecraft" / "ca" / "ca.pem"


def test_stagecraft_ca_must_name_a_known_choice(tmp_path: Path) -> None:
    with pytest.raises(CertError, match="STAGECRAFT_CA='both' is not a CA choice"):
        ensure_ca(tmp_path, environ={"STAGECRAFT_CA": "both"})


def test_a_ca_without_its_key_is_reported(tmp_path: Path, own_ca: CA) -> None:
    own_ca.key_path.unlink()
    with pytest.raises(CertError, match="has a certificate but no key") as info:
        ensure_ca(tmp_path / "data", use_mkcert=False)
    assert "delete" in (info.value.hint or "")


mkcert = pytest.mark.skipif(shutil.which("mkcert") is None, reason="mkcert is not installed")


@mkcert
def test_mkcert_ca_is_created_by_mkcert_and_used_for_leaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tls_handshake: Handshake
) -> None:
    caroot = tmp_path / "mkcert-root"
    monkeypatch.setenv("CAROOT", str(caroot))
    monkeypatch.delenv("STAGECRAFT_CA", raising=False)
    ca = ensure_ca(tmp_path / "data")  # mkcert is on PATH: its CA is the default
    assert (ca.source, ca.cert_path, ca.key_path) == (
        "mkcert",
        caroot / "rootCA.pem",
        caroot / "rootCA-key.pem",
    )
    assert "mkcert" in ca.name
    assert not (tmp_path / "data").exists()  # no own CA was created
    assert ensure_ca(tmp_path / "data") == ca
    leaf = ensure_leaf(ca, HOSTS, tmp_path / "certs")
    tls_handshake(ca.cert_path, leaf.cert_path, leaf.key_path, "api.quickstart.localhost")


@mkcert
def test_mkcert_ca_without_its_key_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_ca: CA
) -> None:
    caroot = tmp_path / "shared-root"
    caroot.mkdir()
    shutil.copy(own_ca.cert_path, caroot / "rootCA.pem")
    monkeypatch.setenv("CAROOT", str(caroot))
    with pytest.raises(CertError, match=r"has no key \(rootCA-key.pem\)") as info:
        ensure_ca(tmp_path / "data", use_mkcert=True)
    assert "STAGECRAFT_CA=own" in (info.value.hint or "")


# -- leaves ----------------------------------------------------------------------------


def test_leaf_has_exactly_the_requested_names(tmp_path: Path, own_ca: CA) -> None:
    names = [*HOSTS, "*.quickstart.localhost", "API.quickstart.localhost.", "127.0.0.1", "::1"]
    leaf = ensure_leaf(own_ca, names, tmp_path / "certs")
    expected = (
        "*.quickstart.localhost",
        "127.0.0.1",
        "::1",
        "api.quickstart.localhost",
        "app.quickstart.localhost",
    )
    assert leaf.hostnames == expected
    cert = load(leaf.cert_path)
    assert leaf_hostnames(cert) == expected
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert (leaf.issued, leaf.reason) == (True, "no certificate yet")
    assert mode(leaf.key_path) == 0o600
    assert cert.issuer == load(own_ca.cert_path).subject
    assert leaf.not_after == cert.not_valid_after_utc
    assert dt.timedelta(days=396) < leaf.not_after - dt.datetime.now(dt.UTC)


def test_leaf_verifies_for_its_names_and_not_for_others(
    tmp_path: Path, own_ca: CA, tls_handshake: Handshake
) -> None:
    leaf = ensure_leaf(own_ca, HOSTS, tmp_path / "certs")
    tls_handshake(own_ca.cert_path, leaf.cert_path, leaf.key_path, "api.quickstart.localhost")
    tls_handshake(own_ca.cert_path, leaf.cert_path, leaf.key_path, "app.quickstart.localhost")
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        tls_handshake(own_ca.cert_path, leaf.cert_path, leaf.key_path, "mail.quickstart.localhost")


def test_leaf_from_another_ca_is_not_trusted(
    tmp_path: Path, own_ca: CA, tls_handshake: Handshake
) -> None:
    other = ensure_ca(tmp_path / "other", use_mkcert=False)
    leaf = ensure_leaf(other, HOSTS, tmp_path / "certs")
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        tls_handshake(own_ca.cert_path, leaf.cert_path, leaf.key_path, HOSTS[0])


def test_leaf_is_reused_while_nothing_changed(tmp_path: Path, own_ca: CA) -> None:
    out = tmp_path / "certs"
    first = ensure_leaf(own_ca, HOSTS, out)
    data = (first.cert_path.read_bytes(), first.key_path.read_bytes())
    again = ensure_leaf(own_ca, list(reversed(HOSTS)), out)  # same set, other order
    assert (again.issued, again.reason) == (False, "reused")
    assert (again.cert_path.read_bytes(), again.key_path.read_bytes()) == data
    assert again.not_after == first.not_after


def test_leaf_is_reissued_when_the_names_change(tmp_path: Path, own_ca: CA) -> None:
    out = tmp_path / "certs"
    ensure_leaf(own_ca, HOSTS, out)
    changed = ensure_leaf(own_ca, [*HOSTS, "mail.quickstart.localhost"], out)
    assert (changed.issued, changed.reason) == (True, "hostnames changed")
    assert "mail.quickstart.localhost" in leaf_hostnames(load(changed.cert_path))
    fewer = ensure_leaf(own_ca, HOSTS[:1], out)
    assert (fewer.issued, fewer.reason) == (True, "hostnames changed")


def test_leaf_is_reissued_within_seven_days_of_expiry(tmp_path: Path, own_ca: CA) -> None:
    out = tmp_path / "certs"
    first = ensure_leaf(own_ca, HOSTS, out)
    eight_days_before = first.not_after - dt.timedelta(days=8)
    assert not ensure_leaf(own_ca, HOSTS, out, now=eight_days_before).issued
    six_days_before = first.not_after - dt.timedelta(days=6)
    renewed = ensure_leaf(own_ca, HOSTS, out, now=six_days_before)
    assert (renewed.issued, renewed.reason) == (True, "expires within 7 days")


def test_leaf_is_reissued_when_the_ca_changes(tmp_path: Path, own_ca: CA) -> None:
    out = tmp_path / "certs"
    ensure_leaf(own_ca, HOSTS, out)
    other = ensure_ca(tmp_path / "other", use_mkcert=False)
    moved = ensure_leaf(other, HOSTS, out)
    assert (moved.issued, moved.reason) == (True, "issued by another CA")
    load(moved.cert_path).verify_directly_issued_by(load(other.cert_path))


def test_leaf_is_reissued_when_its_key_does_not_match(tmp_path: Path, own_ca: CA) -> None:
    out = tmp_path / "certs"
    leaf = ensure_leaf(own_ca, HOSTS, out)
    stranger = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    leaf.key_path.write_bytes(stranger)
    assert ensure_leaf(own_ca, HOSTS, out).reason == "key does not match"
    leaf.key_path.write_text("garbage")
    assert ensure_leaf(own_ca, HOSTS, out).reason == "key unreadable"
    leaf.key_path.unlink()
    assert ensure_leaf(own_ca, HOSTS, out).reason == "no certificate yet"


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ([], "at least one hostname"),
        (["  "], "invalid hostname"),
        (["api shop"], "invalid hostname"),
        (["http://api.shop"], "invalid hostname"),
        (["api.*.shop"], "only a leading"),
        (["**.shop"], "only a leading"),
    ],
)
def test_invalid_hostnames_are_rejected(names: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalize_hostnames(names)

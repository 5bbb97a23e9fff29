"""Dev certificates: leaves for exactly the dev hostnames, signed by the local CA.

The CA itself comes from :mod:`stagecraft.dev.ca`, trusting it from
:mod:`stagecraft.dev.trust` (both re-exported here). A leaf is reused until its hostname set
changes, it nears expiry (7 days), or the CA changes; then it is reissued.

Example::

    ca = ensure_ca()
    leaf = ensure_leaf(ca, ["app.shop.localhost", "api.shop.localhost"], Path(".stagecraft/certs"))
    # leaf.cert_path, leaf.key_path -> give them to the dev proxy
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from stagecraft.dev.ca import CA, CertError, ensure_ca, user_data_dir
from stagecraft.dev.trust import TrustResult, install_trust, trust_instructions
from stagecraft.dev.x509util import (
    cert_pem,
    expiry,
    is_ip,
    key_pem,
    key_usage,
    load_cert,
    utcnow,
    write_atomic,
)

if TYPE_CHECKING:
    from cryptography import x509

__all__ = [
    "CA",
    "CertError",
    "LeafCert",
    "TrustResult",
    "ensure_ca",
    "ensure_leaf",
    "install_trust",
    "leaf_hostnames",
    "normalize_hostnames",
    "reissue_reason",
    "trust_instructions",
    "user_data_dir",
]

LEAF_DAYS = 397
"""Leaf lifetime: under the 398-day limit browsers apply, renewed automatically anyway."""
RENEW_BEFORE = dt.timedelta(days=7)


@dataclass(frozen=True)
class LeafCert:
    """A dev certificate and its key; ``issued`` tells whether this call (re)issued it."""

    cert_path: Path
    key_path: Path
    hostnames: tuple[str, ...]
    not_after: dt.datetime
    issued: bool
    reason: str
    """Why it was issued (``"hostnames changed"``, ...) or ``"reused"``."""


def normalize_hostnames(hostnames: Iterable[str]) -> tuple[str, ...]:
    """Lower-cased, without trailing dots, de-duplicated and sorted; ValueError if invalid."""
    names: set[str] = set()
    for raw in hostnames:
        name = raw.strip().lower().rstrip(".")
        bad_chars = any(c.isspace() or c in "/:@" for c in name)
        if not name or (bad_chars and not is_ip(name)):
            raise ValueError(f"invalid hostname {raw!r}")
        if "*" in name and not (name.startswith("*.") and "*" not in name[2:]):
            raise ValueError(f"invalid wildcard {raw!r}: only a leading '*.' is allowed")
        names.add(name)
    if not names:
        raise ValueError("a certificate needs at least one hostname")
    return tuple(sorted(names))


def ensure_leaf(
    ca: CA,
    hostnames: Iterable[str],
    out_dir: Path,
    *,
    basename: str = "dev",
    now: dt.datetime | None = None,
) -> LeafCert:
    """A certificate for exactly ``hostnames`` signed by ``ca``, in ``out_dir``.

    Files: ``<basename>.pem`` and ``<basename>-key.pem`` (0600). An existing
    pair is reused unless the hostname set changed, it expires within 7 days,
    it was issued by another CA, or the key does not match; then it is
    reissued (new key too).
    """
    names = normalize_hostnames(hostnames)
    current = now or utcnow()
    cert_path, key_path = out_dir / f"{basename}.pem", out_dir / f"{basename}-key.pem"
    reason = reissue_reason(ca, names, cert_path, key_path, now=current)
    if reason is None:
        existing = load_cert(cert_path)
        assert existing is not None
        return LeafCert(cert_path, key_path, names, expiry(existing), False, "reused")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        not_after = _issue_leaf(ca, names, cert_path, key_path, current)
    except PermissionError as exc:
        raise CertError(
            f"cannot write dev certificates in {out_dir}: permission denied ({exc.filename})",
            hint="fix the directory's owner (was it created by a sudo run?)",
        ) from None
    return LeafCert(cert_path, key_path, names, not_after, True, reason)


def reissue_reason(
    ca: CA,
    hostnames: tuple[str, ...],
    cert_path: Path,
    key_path: Path,
    *,
    now: dt.datetime,
) -> str | None:
    """Why the pair at ``cert_path``/``key_path`` must be (re)issued, or None to reuse it."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    cert = load_cert(cert_path)
    if cert is None or not key_path.exists():
        return "no certificate yet"
    if leaf_hostnames(cert) != hostnames:
        return "hostnames changed"
    if expiry(cert) - now <= RENEW_BEFORE:
        return "expires within 7 days"
    try:
        cert.verify_directly_issued_by(ca.certificate())
    except (ValueError, TypeError, InvalidSignature):
        return "issued by another CA"
    try:
        key = load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return "key unreadable"
    if key.public_key() != cert.public_key():
        return "key does not match"
    return None


def leaf_hostnames(cert: x509.Certificate) -> tuple[str, ...]:
    """The DNS names and IP addresses in ``cert``'s subject alternative names, sorted."""
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    names = [*san.get_values_for_type(x509.DNSName)]
    names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return tuple(sorted(n.lower() for n in names))


def _issue_leaf(
    ca: CA, names: tuple[str, ...], cert_path: Path, key_path: Path, now: dt.datetime
) -> dt.datetime:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert, ca_key = ca.certificate(), ca.private_key()
    key = ec.generate_private_key(ec.SECP256R1())
    # X.509 times have whole seconds: round here so the value returned is the one stored.
    not_after = min(now.replace(microsecond=0) + dt.timedelta(days=LEAF_DAYS), expiry(ca_cert))
    sans: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address(n)) if is_ip(n) else x509.DNSName(n) for n in names
    ]
    subject = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Stagecraft development certificate")]
    # Only for display (clients match the SANs): the first plain name, if one fits.
    plain = [n for n in names if not n.startswith("*") and not is_ip(n) and len(n) <= 64]
    if plain:
        subject.append(x509.NameAttribute(NameOID.COMMON_NAME, plain[0]))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    write_atomic(key_path, key_pem(key), 0o600)
    write_atomic(cert_path, cert_pem(cert), 0o644)
    return not_after

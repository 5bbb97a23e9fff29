"""The local certificate authority of ``stagecraft dev``.

:func:`ensure_ca` picks the CA: mkcert's when the ``mkcert`` binary is
installed (so a CA the user already trusts through ``mkcert -install`` keeps
working), otherwise Stagecraft's own, created once with ``cryptography`` in the
user data dir (``$XDG_DATA_HOME/stagecraft/ca``) and reused by every project.
``STAGECRAFT_CA=mkcert|own`` overrides the choice.

mkcert is only asked for its CA: ``mkcert -CAROOT`` names the directory; when
that holds no CA yet, one throw-away ``mkcert`` run creates it (mkcert creates
its CA on first use; ``mkcert -install`` would also touch the trust stores and
may ask for sudo, which is ``stagecraft dev trust``'s job). Leaves are issued
by Stagecraft for both kinds of CA (:mod:`stagecraft.dev.certs`).
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import shutil
import socket
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from stagecraft.dev.x509util import (
    cert_pem,
    expiry,
    key_pem,
    key_usage,
    load_cert,
    locked,
    utcnow,
    write_atomic,
)
from stagecraft.errors import StagecraftError
from stagecraft.runtime.process import run

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

CaSource = Literal["mkcert", "stagecraft"]

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
MKCERT_CERT_FILE = "rootCA.pem"
MKCERT_KEY_FILE = "rootCA-key.pem"
CA_YEARS = 10


class CertError(StagecraftError):
    """The local CA or a dev certificate cannot be created, read or trusted."""


@dataclass(frozen=True)
class CA:
    """A certificate authority whose key Stagecraft can sign dev certificates with."""

    cert_path: Path
    key_path: Path
    source: CaSource
    name: str
    fingerprint: str
    """SHA-256 of the certificate (hex), to tell CAs apart."""
    not_after: dt.datetime

    def certificate(self) -> x509.Certificate:
        """The CA certificate, parsed."""
        from cryptography import x509

        return x509.load_pem_x509_certificate(self.cert_path.read_bytes())

    def private_key(self) -> CertificateIssuerPrivateKeyTypes:
        """The CA's private key (never logged or shown)."""
        from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            key = load_pem_private_key(self.key_path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise CertError(
                f"cannot read the CA key {self.key_path}: {type(exc).__name__}",
                hint="delete the CA directory to create a new CA (then trust it again)",
            ) from None
        signing = (
            rsa.RSAPrivateKey,
            ec.EllipticCurvePrivateKey,
            ed25519.Ed25519PrivateKey,
            ed448.Ed448PrivateKey,
        )
        if not isinstance(key, signing):
            raise CertError(
                f"the CA key {self.key_path} is a {type(key).__name__}, which cannot sign",
                hint="use a CA with an RSA or EC key",
            )
        return key


def user_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Stagecraft's per-user data dir: ``$XDG_DATA_HOME/stagecraft`` or ``~/.local/share/...``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "stagecraft"


def ensure_ca(
    data_dir: Path | None = None,
    *,
    use_mkcert: bool | None = None,
    environ: Mapping[str, str] | None = None,
) -> CA:
    """The CA for dev certificates, created on first use.

    ``data_dir`` is Stagecraft's user data dir (default :func:`user_data_dir`);
    its own CA lives in ``<data_dir>/ca``. ``use_mkcert``: True or False
    forces the choice; None means ``STAGECRAFT_CA`` if set, else mkcert when
    it is on PATH.
    """
    env = os.environ if environ is None else environ
    if use_mkcert is None:
        choice = env.get("STAGECRAFT_CA", "").strip().lower()
        if choice not in ("", "mkcert", "own"):
            raise CertError(
                f"STAGECRAFT_CA={choice!r} is not a CA choice", hint="use 'mkcert' or 'own'"
            )
        use_mkcert = choice == "mkcert" or (choice == "" and shutil.which("mkcert") is not None)
    if use_mkcert:
        return mkcert_ca()
    return own_ca((data_dir or user_data_dir(env)) / "ca")


def mkcert_ca(mkcert: str = "mkcert") -> CA:
    """mkcert's CA (``$(mkcert -CAROOT)``), letting mkcert create it if it has none yet."""
    hint = "install mkcert (apt-get install mkcert), or set STAGECRAFT_CA=own"
    root = Path(run([mkcert, "-CAROOT"], hint=hint).stdout.strip())
    cert, key = root / MKCERT_CERT_FILE, root / MKCERT_KEY_FILE
    if not cert.exists():
        with tempfile.TemporaryDirectory(prefix="stagecraft-mkcert-") as tmp:
            probe = Path(tmp) / "probe"
            argv = [mkcert, "-cert-file", f"{probe}.pem", "-key-file", f"{probe}-key.pem"]
            run([*argv, "stagecraft-ca-probe.invalid"], hint="mkcert could not create its CA")
    if not cert.exists():
        raise CertError(f"mkcert did not create its CA in {root}", hint="run `mkcert -install`")
    if not key.exists():
        raise CertError(
            f"mkcert's CA in {root} has no key ({MKCERT_KEY_FILE}), so it cannot sign certificates",
            hint="set CAROOT to the directory that holds the key, or set STAGECRAFT_CA=own",
        )
    return _describe(cert, key, "mkcert")


def own_ca(ca_dir: Path) -> CA:
    """Stagecraft's own CA in ``ca_dir``, created there (key 0600) if missing."""
    cert, key = ca_dir / CA_CERT_FILE, ca_dir / CA_KEY_FILE
    try:
        ca_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with locked(ca_dir):
            if not cert.exists():
                _create_ca(cert, key)
    except PermissionError as exc:
        raise CertError(
            f"cannot write the local CA in {ca_dir}: permission denied ({exc.filename})",
            hint="fix the directory's owner, or set XDG_DATA_HOME to a writable place",
        ) from None
    if not key.exists():
        raise CertError(
            f"the local CA in {ca_dir} has a certificate but no key",
            hint=f"delete {ca_dir} to create a new CA (then run `stagecraft dev trust` again)",
        )
    ca = _describe(cert, key, "stagecraft")
    if ca.not_after <= utcnow():
        raise CertError(
            f"the local CA in {ca_dir} expired on {ca.not_after:%Y-%m-%d}",
            hint=f"delete {ca_dir} to create a new CA (then run `stagecraft dev trust` again)",
        )
    return ca


def ca_name() -> str:
    """``Stagecraft local CA <user>@<host>``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"Stagecraft local CA {user}@{socket.gethostname()}"


def _create_ca(cert_path: Path, key_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Stagecraft local CA"),
            x509.NameAttribute(NameOID.COMMON_NAME, ca_name()[:64]),
        ]
    )
    now = utcnow()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(cert_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    # Key first, certificate last: a certificate on disk means the CA is complete.
    write_atomic(key_path, key_pem(key), 0o600)
    write_atomic(cert_path, cert_pem(cert), 0o644)


def _describe(cert_path: Path, key_path: Path, source: CaSource) -> CA:
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    cert = load_cert(cert_path)
    if cert is None:
        raise CertError(
            f"cannot read the CA certificate {cert_path}",
            hint="delete it to let a new CA be created (then trust it again)",
        )
    common = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    name = str(common[0].value) if common else cert.subject.rfc4514_string()
    return CA(
        cert_path=cert_path,
        key_path=key_path,
        source=source,
        name=name,
        fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
        not_after=expiry(cert),
    )

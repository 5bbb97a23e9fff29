"""Trusting the dev CA: what ``stagecraft dev trust`` does, or tells the user to do.

:func:`install_trust` copies the CA certificate into the system trust store
(Debian/Ubuntu: ``/usr/local/share/ca-certificates`` + ``update-ca-certificates``;
Fedora/RHEL: ``/etc/pki/ca-trust/source/anchors`` + ``update-ca-trust``) when
it may, and reports what it did. When it may not (not root, no known store),
it changes nothing and returns the manual steps, the same lines
:func:`trust_instructions` gives.

Example::

    result = install_trust(ensure_ca())
    for line in result.actions if result.installed else result.manual_steps:
        console.print(line)
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from stagecraft.dev.ca import CA, CertError
from stagecraft.dev.x509util import write_atomic
from stagecraft.errors import CommandFailed
from stagecraft.runtime.process import run

SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin"


@dataclass(frozen=True)
class TrustStore:
    """A system trust store fed from a directory of anchors and refreshed by a command."""

    name: str
    anchor_dir: Path
    update_argv: tuple[str, ...]
    suffix: str = ".crt"

    def anchor_path(self, ca: CA) -> Path:
        """Where ``ca``'s certificate goes: one file per CA (named by its fingerprint)."""
        return self.anchor_dir / f"stagecraft-{ca.source}-{ca.fingerprint[:16]}{self.suffix}"


DEBIAN = TrustStore(
    "Debian/Ubuntu", Path("/usr/local/share/ca-certificates"), ("update-ca-certificates",)
)
FEDORA = TrustStore(
    "Fedora/RHEL", Path("/etc/pki/ca-trust/source/anchors"), ("update-ca-trust", "extract"), ".pem"
)
KNOWN_STORES = (DEBIAN, FEDORA)


@dataclass(frozen=True)
class TrustResult:
    """What :func:`install_trust` did.

    ``installed``: the CA is in the system store now; ``changed``: this call
    put it there; ``actions``: what was done, in words; ``manual_steps``: the
    commands left for the user (everything, when not installed; the browser
    and Node.js notes otherwise); ``reason``: why it was not installed.
    """

    installed: bool
    changed: bool
    actions: tuple[str, ...]
    manual_steps: tuple[str, ...]
    reason: str | None = None


def system_trust_store() -> TrustStore | None:
    """The trust store of this system, if it is one Stagecraft knows how to feed."""
    for store in KNOWN_STORES:
        if store.anchor_dir.parent.is_dir() and _find(store.update_argv[0]) is not None:
            return store
    return None


def trust_instructions(
    ca: CA, store: TrustStore | None = None, *, platform: str | None = None
) -> list[str]:
    """Commands that make this machine (and its browsers) trust ``ca``, one per line."""
    plat = platform or sys.platform
    cert = shlex.quote(str(ca.cert_path))
    lines: list[str] = []
    if ca.source == "mkcert":
        lines.append("mkcert -install   # mkcert's CA into the system, Firefox and Chrome stores")
    if plat == "darwin":
        lines.append(
            "sudo security add-trusted-cert -d -r trustRoot "
            f"-k /Library/Keychains/System.keychain {cert}"
        )
    else:
        stores = [store] if store is not None else list(KNOWN_STORES)
        if store is None and (found := system_trust_store()) is not None:
            stores = [found]
        for one in stores:
            target = shlex.quote(str(one.anchor_path(ca)))
            update = shlex.join(one.update_argv)
            lines.append(f"sudo cp {cert} {target} && sudo {update}   # {one.name}")
        lines.append(
            f"certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n {shlex.quote(ca.name)} -i {cert}"
            "   # Chrome/Firefox on Linux (package libnss3-tools)"
        )
    lines.append(f"export NODE_EXTRA_CA_CERTS={cert}   # Node.js clients")
    return lines


def install_trust(ca: CA, store: TrustStore | None = None) -> TrustResult:
    """Install ``ca`` into the system trust store if permitted; otherwise return the steps."""
    store = store or system_trust_store()
    if store is None:
        return TrustResult(
            installed=False,
            changed=False,
            actions=(),
            manual_steps=tuple(trust_instructions(ca)),
            reason="no supported system trust store found (Debian/Ubuntu or Fedora/RHEL)",
        )
    steps = tuple(trust_instructions(ca, store))
    browser_notes = tuple(line for line in steps if not line.startswith("sudo cp "))
    target = store.anchor_path(ca)
    data = ca.cert_path.read_bytes()
    if _same_content(target, data):
        return TrustResult(True, False, (f"already installed: {target}",), browser_notes)
    update = _find(store.update_argv[0])
    if update is None:
        return TrustResult(False, False, (), steps, f"`{store.update_argv[0]}` is not installed")
    if not os.access(store.anchor_dir, os.W_OK):
        return TrustResult(
            False, False, (), steps, f"writing to {store.anchor_dir} needs root (run with sudo)"
        )
    try:
        write_atomic(target, data, 0o644)
    except OSError as exc:
        return TrustResult(False, False, (), steps, f"cannot write {target}: {exc.strerror}")
    argv = [update, *store.update_argv[1:]]
    try:
        run(argv, hint=f"run `sudo {shlex.join(store.update_argv)}` by hand to see why")
    except CommandFailed as exc:
        raise CertError(
            f"copied the CA to {target}, but {exc.message}",
            hint=f"run `sudo {shlex.join(store.update_argv)}` by hand to see why",
        ) from None
    actions = (f"copied {ca.cert_path} to {target}", f"ran {shlex.join(argv)}")
    return TrustResult(True, True, actions, browser_notes)


def _same_content(path: Path, data: bytes) -> bool:
    try:
        return path.read_bytes() == data
    except OSError:
        return False


def _find(program: str) -> str | None:
    """``program`` on PATH or in the sbin directories (often not on a user's PATH)."""
    if os.sep in program:
        return program if os.access(program, os.X_OK) else None
    path = os.pathsep.join(p for p in (os.environ.get("PATH", ""), SBIN_PATH) if p)
    return shutil.which(program, path=path)

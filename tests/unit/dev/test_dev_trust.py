"""Trusting the dev CA: a real update-ca-certificates run on a private store, and the manual way.

The system store of this machine is never touched: the Debian tool is pointed
at a store under the test's temporary directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from stagecraft.dev import trust
from stagecraft.dev.certs import CA, CertError, ensure_leaf
from stagecraft.dev.trust import TrustStore, install_trust, trust_instructions

Handshake = Callable[[Path, Path, Path, str], None]

needs_debian_tool = pytest.mark.skipif(
    shutil.which("update-ca-certificates", path="/usr/sbin:/usr/bin:/sbin") is None,
    reason="update-ca-certificates (package ca-certificates) is not installed",
)


def private_debian_store(root: Path) -> tuple[TrustStore, Path]:
    """A Debian-style store under ``root`` and the bundle update-ca-certificates writes."""
    for name in ("anchors", "etc", "share", "hooks"):
        (root / name).mkdir(parents=True)
    (root / "certs.conf").write_text("")
    argv = (
        "update-ca-certificates",
        "--certsconf", str(root / "certs.conf"),
        "--certsdir", str(root / "share"),
        "--localcertsdir", str(root / "anchors"),
        "--etccertsdir", str(root / "etc"),
        "--hooksdir", str(root / "hooks"),
    )  # fmt: skip
    return TrustStore("test store", root / "anchors", argv), root / "etc" / "ca-certificates.crt"


@needs_debian_tool
def test_install_trust_feeds_the_store_and_clients_then_trust_the_leaf(
    tmp_path: Path, own_ca: CA, tls_handshake: Handshake
) -> None:
    store, bundle = private_debian_store(tmp_path / "store")
    result = install_trust(own_ca, store)
    anchor = store.anchor_path(own_ca)
    assert (result.installed, result.changed, result.reason) == (True, True, None)
    assert result.actions[0] == f"copied {own_ca.cert_path} to {anchor}"
    assert result.actions[1].startswith("ran ") and "update-ca-certificates" in result.actions[1]
    assert anchor.name == f"stagecraft-stagecraft-{own_ca.fingerprint[:16]}.crt"
    assert own_ca.cert_path.read_text() in bundle.read_text()
    # A client that knows only the refreshed bundle trusts the dev certificate.
    leaf = ensure_leaf(own_ca, ["api.quickstart.localhost"], tmp_path / "certs")
    tls_handshake(bundle, leaf.cert_path, leaf.key_path, "api.quickstart.localhost")
    assert any("NODE_EXTRA_CA_CERTS" in line for line in result.manual_steps)
    assert not any(line.startswith("sudo cp") for line in result.manual_steps)

    again = install_trust(own_ca, store)
    assert (again.installed, again.changed) == (True, False)
    assert again.actions == (f"already installed: {anchor}",)


def test_a_failing_update_command_is_an_error(tmp_path: Path, own_ca: CA) -> None:
    failing = ("sh", "-c", "echo 'bundle is read-only' >&2; exit 2")
    store = TrustStore("broken", tmp_path, failing)
    with pytest.raises(CertError) as info:
        install_trust(own_ca, store)
    assert info.value.message.startswith(f"copied the CA to {store.anchor_path(own_ca)}, but `")
    assert info.value.message.endswith("exited with 2: bundle is read-only")


@pytest.mark.skipif(
    shutil.which("setpriv") is None or os.geteuid() != 0,
    reason="needs root and setpriv to run as an unprivileged user",
)
def test_without_permission_nothing_changes_and_the_steps_are_returned(own_ca: CA) -> None:
    # The CA and a store directory the unprivileged user can read but not write.
    shared = Path(tempfile.mkdtemp(prefix="stagecraft-trust-"))
    try:
        shared.chmod(0o755)
        (shared / "anchors").mkdir(mode=0o755)
        cert = shared / "ca.pem"
        shutil.copy(own_ca.cert_path, cert)
        cert.chmod(0o644)
        code = (
            "import datetime, json\n"
            "from pathlib import Path\n"
            "from stagecraft.dev.ca import CA\n"
            "from stagecraft.dev.trust import TrustStore, install_trust\n"
            f"ca = CA(Path({str(cert)!r}), Path('/nonexistent'), 'stagecraft', 'n', "
            f"{own_ca.fingerprint!r}, datetime.datetime.now(datetime.UTC))\n"
            f"store = TrustStore('t', Path({str(shared / 'anchors')!r}), ('true',))\n"
            "r = install_trust(ca, store)\n"
            "print(json.dumps([r.installed, r.changed, r.reason, list(r.manual_steps)]))\n"
        )
        result = subprocess.run(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                sys.executable,
                "-c",
                code,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        installed, changed, reason, steps = json.loads(result.stdout)
        assert list((shared / "anchors").iterdir()) == []
    finally:
        shutil.rmtree(shared)
    assert (installed, changed) == (False, False)
    assert reason == f"writing to {shared / 'anchors'} needs root (run with sudo)"
    assert steps[0].startswith(f"sudo cp {cert} {shared / 'anchors'}/stagecraft-stagecraft-")
    assert steps[0].endswith("&& sudo true   # t")


def test_no_known_store_returns_the_manual_steps(
    own_ca: CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trust, "KNOWN_STORES", ())
    result = install_trust(own_ca)
    assert (result.installed, result.changed) == (False, False)
    assert result.reason and "no supported system trust store" in result.reason
    assert result.manual_steps == tuple(trust_instructions(own_ca))


def test_instructions_per_platform_and_ca_source(own_ca: CA) -> None:
    debian = trust.DEBIAN
    linux = trust_instructions(own_ca, debian, platform="linux")
    anchor = debian.anchor_path(own_ca)
    assert linux[0] == (
        f"sudo cp {own_ca.cert_path} {anchor} && sudo update-ca-certificates   # Debian/Ubuntu"
    )
    assert linux[1].startswith("certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n '")
    assert linux[-1] == f"export NODE_EXTRA_CA_CERTS={own_ca.cert_path}   # Node.js clients"
    mac = trust_instructions(own_ca, platform="darwin")
    assert mac[0].startswith("sudo security add-trusted-cert -d -r trustRoot")
    mkcert_ca = CA(**{**own_ca.__dict__, "source": "mkcert"})
    assert trust_instructions(mkcert_ca, debian, platform="linux")[0].startswith("mkcert -install")


def test_system_store_detection_on_this_machine() -> None:
    store = trust.system_trust_store()
    if Path("/usr/local/share/ca-certificates").parent.is_dir() and shutil.which(
        "update-ca-certificates", path="/usr/sbin:/usr/bin"
    ):
        assert store == trust.DEBIAN
    else:
        assert store in (None, trust.FEDORA)

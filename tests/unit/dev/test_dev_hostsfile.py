"""Managed /etc/hosts lines: golden edits, byte-for-byte removal, atomic and in-place writes."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from stagecraft.dev.hostsfile import (
    HostsFile,
    HostsFileError,
    add_entries,
    hosts_entries_needed,
    managed_names,
    needs_hosts_entry,
    remove_entries,
)

NAMES = ["api.shop.test", "app.shop.test"]

# Inputs as bytes so line ends and missing final newlines are explicit (and no
# editor or hook can normalise them). Expected results are golden files.
CASES: dict[str, bytes] = {
    "debian-default": (
        b"127.0.0.1\tlocalhost\n127.0.1.1\tdevbox.example.org\tdevbox\n\n"
        b"# The following lines are desirable for IPv6 capable hosts\n"
        b"::1     localhost ip6-localhost ip6-loopback\nff02::1 ip6-allnodes\n"
    ),
    "no-trailing-newline": b"127.0.0.1 localhost\n10.0.0.5   db.internal   # staging db",
    "crlf": b"127.0.0.1 localhost\r\n\r\n# corp\r\n10.1.2.3 wiki.corp\r\n",
    "crlf-no-trailing-newline": b"127.0.0.1 localhost\r\n10.1.2.3 wiki.corp",
    "empty": b"",
    "only-blank-lines": b"\n\n  \n",
    "trailing-whitespace-and-tabs": b"127.0.0.1\t localhost   \n\t# indented comment\t\n",
    "other-project-block": (
        b"127.0.0.1 localhost\n# stagecraft:other begin\n127.0.0.1\tx.other.test\n"
        b"# stagecraft:other end\n"
    ),
    "latin1-comment": b"127.0.0.1 localhost\n# caf\xe9 server\n10.0.0.9 cafe.lan\n",
}

# A block left behind by a crashed run, with other names, in the middle of the file.
CRASHED = (
    b"127.0.0.1 localhost\n"
    b"# stagecraft:shop begin\n127.0.0.1\told.shop.test\n# stagecraft:shop end\n"
    b"10.0.0.7 printer.lan\n"
)


class HostsSnapshot(SingleFileSnapshotExtension):
    """One byte-exact golden hosts file per snapshot."""

    file_extension = "hosts"
    _write_mode = WriteMode.BINARY


def edit(data: bytes, change: str) -> bytes:
    text = data.decode("utf-8", "surrogateescape")
    out = add_entries(text, "shop", NAMES) if change == "add" else remove_entries(text, "shop")
    return out.encode("utf-8", "surrogateescape")


@pytest.mark.parametrize("case", sorted(CASES))
def test_add_golden(case: str, snapshot: SnapshotAssertion) -> None:
    assert edit(CASES[case], "add") == snapshot(extension_class=HostsSnapshot)


@pytest.mark.parametrize("case", sorted(CASES))
def test_readd_is_idempotent_and_remove_restores_every_byte(case: str) -> None:
    original = CASES[case]
    added = edit(original, "add")
    assert added != original
    assert edit(added, "add") == added
    assert edit(added, "remove") == original
    assert edit(original, "remove") == original  # nothing to remove


def test_a_block_from_a_crashed_run_is_replaced_in_place(snapshot: SnapshotAssertion) -> None:
    added = edit(CRASHED, "add")
    assert added == snapshot(extension_class=HostsSnapshot)
    assert added.index(b"# stagecraft:shop begin") < added.index(b"printer.lan")
    assert edit(added, "remove") == b"127.0.0.1 localhost\n10.0.0.7 printer.lan\n"


def test_duplicate_blocks_are_merged_into_the_first() -> None:
    twice = CRASHED + b"# stagecraft:shop begin\n127.0.0.1\tx.shop.test\n# stagecraft:shop end\n"
    added = edit(twice, "add").decode()
    assert added.count("# stagecraft:shop begin") == 1
    assert managed_names(added, "shop") == NAMES
    assert edit(twice, "remove") == b"127.0.0.1 localhost\n10.0.0.7 printer.lan\n"


def test_changing_the_names_of_a_block_at_eof_keeps_the_missing_newline() -> None:
    original = CASES["no-trailing-newline"].decode()
    first = add_entries(original, "shop", ["a.shop.test"])
    second = add_entries(first, "shop", NAMES)
    assert not second.endswith("\n")
    assert remove_entries(second, "shop") == original


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# stagecraft:shop begin\n127.0.0.1 a.test\n", "block at line 1 has no end marker"),
        ("x\n# stagecraft:shop end\n", "line 2 ends a stagecraft:shop block that never began"),
        (
            "# stagecraft:shop begin\n# stagecraft:shop begin\n# stagecraft:shop end\n",
            "block at line 1 has no end marker",
        ),
    ],
)
def test_broken_blocks_are_reported_not_guessed(text: str, message: str) -> None:
    with pytest.raises(HostsFileError, match=message):
        add_entries(text, "shop", NAMES)


def test_which_names_need_entries() -> None:
    names = [
        "app.shop.localhost",
        "localhost",
        "API.Shop.Test.",
        "api.shop.test",
        "127.0.0.1",
        "::1",
        "shop.dev",
        "*.shop.localhost",
    ]
    assert hosts_entries_needed(names) == ["api.shop.test", "shop.dev"]
    assert not needs_hosts_entry("x.localhost")
    with pytest.raises(HostsFileError, match=r"\*\.shop\.test is a wildcard"):
        hosts_entries_needed(["*.shop.test"])


# -- the file on disk ------------------------------------------------------------------


def test_hostsfile_add_and_remove_keep_mode_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    original = CASES["crlf-no-trailing-newline"]
    path.write_bytes(original)
    path.chmod(0o640)
    hosts = HostsFile("shop", path)
    assert hosts.add(["app.shop.test", "api.shop.test", "api.shop.test"]) is True
    assert hosts.names() == NAMES
    assert hosts.add(NAMES) is False  # idempotent: the file is not rewritten
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert hosts.remove() is True
    assert path.read_bytes() == original
    assert hosts.remove() is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hosts"]  # no temp files left


def test_hostsfile_created_when_missing_and_empty_add_removes(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    hosts = HostsFile("shop", path)
    assert hosts.remove() is False
    assert hosts.add(["a.shop.test"]) is True
    assert (
        path.read_text()
        == "# stagecraft:shop begin\n127.0.0.1\ta.shop.test\n# stagecraft:shop end\n"
    )
    assert hosts.add([]) is True
    assert path.read_text() == ""


def test_hostsfile_rejects_wildcards_and_bad_projects(tmp_path: Path) -> None:
    with pytest.raises(HostsFileError, match="not all are plain hostnames"):
        HostsFile("shop", tmp_path / "hosts").add(["*.shop.test"])
    with pytest.raises(ValueError, match="cannot mark"):
        HostsFile("my shop", tmp_path / "hosts")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to bind-mount")
def test_bind_mounted_hosts_file_is_written_in_place(tmp_path: Path) -> None:
    source = tmp_path / "real-hosts"
    source.write_bytes(CASES["debian-default"])
    target = tmp_path / "etc" / "hosts"
    target.parent.mkdir()
    target.write_bytes(b"")
    mounted = subprocess.run(["mount", "--bind", str(source), str(target)], check=False)
    if mounted.returncode != 0:
        pytest.skip("bind mounts are not permitted here")
    try:
        hosts = HostsFile("shop", target)
        assert hosts.add(NAMES) is True  # rename() over the mount point fails with EBUSY
        assert managed_names(source.read_text(), "shop") == NAMES  # written through the mount
        assert hosts.remove() is True
        assert source.read_bytes() == CASES["debian-default"]
    finally:
        subprocess.run(["umount", str(target)], check=True)
    assert sorted(p.name for p in target.parent.iterdir()) == ["hosts"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged user")
def test_permission_denied_explains_sudo() -> None:
    # A directory the unprivileged user can read but not write (pytest's tmp_path
    # is private to root, so it would fail earlier, for another reason).
    etc = Path(tempfile.mkdtemp(prefix="stagecraft-hosts-"))
    etc.chmod(0o755)
    path = etc / "hosts"
    path.write_bytes(CASES["debian-default"])
    path.chmod(0o644)
    code = (
        "import sys; from pathlib import Path\n"
        "from stagecraft.dev.hostsfile import HostsFile, HostsFileError\n"
        "try:\n"
        f"    HostsFile('shop', Path({str(path)!r})).add(['a.shop.test'])\n"
        "except HostsFileError as e:\n"
        "    print(e.message); print(e.hint); sys.exit(0)\n"
        "sys.exit(1)\n"
    )
    try:
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
        assert path.read_bytes() == CASES["debian-default"]
    finally:
        shutil.rmtree(etc)
    assert result.returncode == 0, result.stderr
    message, hint = result.stdout.splitlines()
    assert message == f"cannot modify {path}: permission denied"
    assert "sudo" in hint and ".localhost" in hint

"""The SSH host keys of servers ``infra up`` created, in a known_hosts file of the project.

A new cloud server's host key cannot be learned from the cloud's API
(DigitalOcean publishes none), so ``infra up`` scans it once, right after the
server first answers, and records it (trust on first use, at the moment the
server is youngest). A server whose key is already recorded is never scanned
again: from then on ssh verifies it strictly, and a changed key fails with
ssh's own "host key mismatch". Servers whose keys a provider knows exactly
(the ``local`` provider generates them) are recorded from that, with no scan.

Example::

    lines = scan("203.0.113.10", 22, timeout=300)
    record(known_hosts, "203.0.113.10", 22, lines)
    fingerprints(lines)   # ['ED25519 SHA256:...']
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from stagecraft.errors import StagecraftError
from stagecraft.runtime import process

KEY_TYPES = "ed25519,ecdsa,rsa"
_WRITING = threading.Lock()  # hosts are readied in parallel; each rewrites the one file


class HostKeyScanFailed(StagecraftError):
    """A new server did not show an SSH host key in time."""


def host_field(address: str, port: int) -> str:
    """How known_hosts names ``address:port`` (``[addr]:port`` unless the port is 22)."""
    return address if port == 22 else f"[{address}]:{port}"


def scan(address: str, port: int, *, timeout: float, interval: float = 2.0) -> list[str]:
    """The host's key lines (``ssh-keyscan``), polled until its sshd answers or ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        found = process.run(
            ["ssh-keyscan", "-T", "5", "-p", str(port), "-t", KEY_TYPES, address],
            check=False,
            timeout=30,
        )
        lines = [
            line.strip()
            for line in found.stdout.splitlines()
            if line.strip() and not line.startswith("#")
        ]
        if lines:
            return sorted(lines)
        if time.monotonic() + interval > deadline:
            raise HostKeyScanFailed(
                f"{address}:{port} did not answer on SSH within {timeout:g}s",
                hint="the server may still be booting: run `stagecraft infra up` again "
                "(it keeps what exists), or raise --timeout",
            )
        time.sleep(interval)  # poll: a new server's sshd comes up when it has booted
        interval = min(interval * 1.5, 10.0)


def recorded(path: Path, address: str, port: int) -> list[str]:
    """The lines of ``path`` for ``address:port`` (none when the file does not exist)."""
    name = host_field(address, port)
    return [line for line in _lines(path) if _names(line) and name in _names(line)]


def record(path: Path, address: str, port: int, lines: Sequence[str]) -> None:
    """Replace what ``path`` says about ``address:port`` with ``lines``."""
    name = host_field(address, port)
    with _WRITING:
        kept = [line for line in _lines(path) if name not in _names(line)]
        _write(path, [*kept, *lines])


def forget(path: Path, address: str, port: int) -> None:
    """Remove ``address:port`` from ``path``; remove the file when nothing is left."""
    name = host_field(address, port)
    with _WRITING:
        kept = [line for line in _lines(path) if name not in _names(line)]
        if kept:
            _write(path, kept)
        else:
            path.unlink(missing_ok=True)


def fingerprints(lines: Sequence[str]) -> list[str]:
    """``ED25519 SHA256:...`` per key line (``ssh-keygen -lf``)."""
    shown = process.run(["ssh-keygen", "-lf", "-"], input="\n".join(lines) + "\n", check=False)
    found = []
    for line in shown.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            found.append(f"{parts[-1].strip('()')} {parts[1]}")
    return found


def _names(line: str) -> list[str]:
    first = line.split(" ", 1)[0]
    return [] if line.startswith("#") else first.split(",")


def _lines(path: Path) -> list[str]:
    try:
        return [line for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []


def _write(path: Path, lines: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as file:
        file.write("".join(f"{line}\n" for line in lines))
    os.chmod(temp, 0o644)
    os.replace(temp, path)

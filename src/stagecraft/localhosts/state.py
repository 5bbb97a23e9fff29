"""Sandbox bookkeeping: prefix locks, availability, leftovers and their cleanup.

A sandbox prefix is held through a flock on ``/run/stagecraft-sandbox/<prefix>.lock``
(released by the kernel when the holder dies), so whatever a crashed run left
under a prefix nobody holds can be removed safely. Resources are found by name
and namespace, not by remembered process ids.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
from pathlib import Path
from typing import IO

from stagecraft import log
from stagecraft.errors import PrerequisiteMissing, StagecraftError
from stagecraft.localhosts import hostos
from stagecraft.runtime.process import run

logger = logging.getLogger(__name__)

STATE_ROOT = Path("/run/stagecraft-sandbox")
SSHD = "/usr/sbin/sshd"
TOOLS = ("ip", "iptables", "nsenter", "unshare", "dockerd", "docker", "ssh-keygen", "mount")
PREFIX_RE = re.compile(r"[a-z][a-z0-9]{0,5}")


class SandboxError(StagecraftError):
    """A sandbox could not be created, or its prefix is in use by another process."""


class SandboxBusyError(SandboxError):
    """Another live process holds the sandbox prefix."""


class SandboxUnavailable(PrerequisiteMissing):
    """This machine cannot run sandbox hosts (not root, or a tool is missing)."""


def check_available() -> None:
    """Raise :class:`SandboxUnavailable` unless this machine can create sandbox hosts."""
    if os.geteuid() != 0:
        raise SandboxUnavailable("sandbox hosts need root", hint="run the tests as root")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if not Path(SSHD).exists():
        missing.append(SSHD)
    if missing:
        raise SandboxUnavailable(
            f"sandbox hosts need {', '.join(missing)}",
            hint="run scripts/setup.sh (docker.io, openssh-server, iproute2, iptables)",
        )
    if run(["ip", "netns", "list"], check=False).returncode != 0:
        raise SandboxUnavailable("`ip netns` does not work here", hint="install iproute2")


def cleanup_leftovers(prefix: str) -> None:
    """Remove what an earlier (crashed) run left under ``prefix``.

    Raises :class:`SandboxError` when a live process holds the prefix.
    """
    check_available()
    lock = claim(prefix)
    try:
        cleanup(prefix)
    finally:
        lock.close()


def find_leftovers(prefix: str) -> dict[str, list[str]]:
    """What exists under ``prefix`` (empty lists after a complete teardown)."""
    state = STATE_ROOT / prefix
    host_re = rf"{re.escape(prefix)}-h\d+"
    namespaces = hostos.netns_names(host_re)
    pids: set[int] = hostos.pids_with_cmdline(f"{state}/")
    for ns in namespaces:
        pids |= hostos.pids_in_namespace("net", Path("/var/run/netns") / ns)
    cgroups = hostos.cgroup_dirs(host_re)
    pids |= hostos.pids_in_cgroups(cgroups)
    return {
        "namespaces": namespaces,
        "processes": [f"{pid} {hostos.exe_of(pid)}" for pid in sorted(pids)],
        "mounts": [str(p) for p in hostos.mountpoints_under(state)],
        "links": hostos.link_names(rf"{host_re}|{re.escape(prefix)}br0"),
        "rules": [" ".join(rule) for rule in hostos.forward_rules(rule_comment(prefix))],
        "cgroups": [str(p) for p in cgroups],
        "state": [str(state)] if state.exists() else [],
    }


def cleanup_stale() -> list[str]:
    """Clean every prefix under /run/stagecraft-sandbox that no live process holds.

    Prefixes marked with :func:`keep` (hosts of the ``local`` cloud, which outlive the
    command that created them) are left alone: ``infra down`` removes them.
    """
    if not STATE_ROOT.is_dir():
        return []
    names = {p.stem for p in STATE_ROOT.glob("*.lock") if PREFIX_RE.fullmatch(p.stem)}
    names |= {p.name for p in STATE_ROOT.iterdir() if p.is_dir() and PREFIX_RE.fullmatch(p.name)}
    cleaned = []
    for prefix in sorted(names - set(kept_prefixes())):
        try:
            cleanup_leftovers(prefix)
        except SandboxBusyError:
            continue
        cleaned.append(prefix)
    return cleaned


def kept_prefixes() -> list[str]:
    """Prefixes whose hosts outlive the process that made them (the ``local`` cloud's)."""
    if not STATE_ROOT.is_dir():
        return []
    return sorted(p.stem for p in STATE_ROOT.glob("*.kept") if PREFIX_RE.fullmatch(p.stem))


def keep(prefix: str, owner: str) -> None:
    """Mark ``prefix`` as kept by ``owner`` (:func:`cleanup_stale` leaves it alone)."""
    STATE_ROOT.mkdir(parents=True, exist_ok=True)
    (STATE_ROOT / f"{prefix}.kept").write_text(owner + "\n")


def unkeep(prefix: str) -> None:
    """Drop the mark of :func:`keep`."""
    (STATE_ROOT / f"{prefix}.kept").unlink(missing_ok=True)


def cleanup(prefix: str, workdir: Path | None = None) -> None:
    """Kill, unmount and delete everything named after ``prefix`` (idempotent)."""
    state = STATE_ROOT / prefix
    recorded = state / "workdir"
    if workdir is None and recorded.exists():
        workdir = Path(recorded.read_text().strip())
    host_re = rf"{re.escape(prefix)}-h\d+"
    namespaces = hostos.netns_names(host_re)
    pids: set[int] = set()
    for ns in namespaces:
        pids |= hostos.pids_in_namespace("net", Path("/var/run/netns") / ns)
    mnts = sorted(state.glob("h*/mnt")) if state.is_dir() else []
    for mnt in mnts:
        pids |= hostos.pids_in_namespace("mnt", mnt)
    pids |= hostos.pids_with_cmdline(f"{state}/")
    cgroups = hostos.cgroup_dirs(host_re)
    pids |= hostos.pids_in_cgroups(cgroups)
    if pids:
        log.event(logger, logging.DEBUG, f"sandbox {prefix}: killing {len(pids)} processes")
    hostos.kill_all(pids)
    hostos.unmount_all(state)
    for ns in namespaces:
        run(["ip", "netns", "del", ns], check=False)
    hostos.delete_forward_rules(rule_comment(prefix))
    for link in hostos.link_names(host_re):
        run(["ip", "link", "del", link], check=False)
    for link in hostos.link_names(re.escape(prefix) + "br0"):
        run(["ip", "link", "del", link], check=False)
    hostos.remove_cgroups(cgroups)
    if workdir is not None and workdir.is_dir():
        for child in workdir.iterdir():
            if child.is_dir() and re.fullmatch(r"h\d+", child.name):
                shutil.rmtree(child, ignore_errors=True)
    if state.is_dir() and not hostos.mountpoints_under(state):
        shutil.rmtree(state, ignore_errors=True)


def claim(prefix: str) -> IO[bytes]:
    """Take the prefix's flock (released when the process dies); fail if another holds it."""
    STATE_ROOT.mkdir(parents=True, exist_ok=True)
    handle = (STATE_ROOT / f"{prefix}.lock").open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise SandboxBusyError(
            f"sandbox prefix {prefix!r} is in use by another process",
            hint="use another prefix, or wait for the other test run to finish",
        ) from None
    return handle


class global_lock:  # noqa: N801 - used like a function in a with statement
    """Serialise subnet allocation between processes."""

    def __enter__(self) -> None:
        STATE_ROOT.mkdir(parents=True, exist_ok=True)
        self._handle = (STATE_ROOT / ".alloc.lock").open("ab")
        fcntl.flock(self._handle, fcntl.LOCK_EX)

    def __exit__(self, *_exc: object) -> None:
        self._handle.close()


def rule_comment(prefix: str) -> str:
    return f"stagecraft-sandbox:{prefix}"

"""Low-level Linux plumbing for sandbox hosts: processes, namespaces, mounts, links, rules.

Everything here finds what it manages by name (a prefix), so that teardown can
also remove what a crashed earlier run left behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from stagecraft.runtime.process import run

CGROUP_ROOT = Path("/sys/fs/cgroup")


def wait_until(condition: Callable[[], bool], *, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``condition`` until it is true or ``timeout`` seconds pass; return the last result."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# -- processes -----------------------------------------------------------------


def all_pids() -> list[int]:
    """Every process id currently in /proc."""
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def is_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (absent, or a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def pids_with_cmdline(fragment: str) -> set[int]:
    """Processes whose command line contains ``fragment``."""
    found: set[int] = set()
    for pid in all_pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if fragment.encode() in cmdline:
            found.add(pid)
    return found


def pids_in_namespace(kind: str, ns_file: Path) -> set[int]:
    """Processes whose ``kind`` namespace ("net", "mnt") is the one bound at ``ns_file``."""
    try:
        target = ns_file.stat()
    except OSError:
        return set()
    found: set[int] = set()
    for pid in all_pids():
        try:
            info = os.stat(f"/proc/{pid}/ns/{kind}")
        except OSError:
            continue
        if (info.st_ino, info.st_dev) == (target.st_ino, target.st_dev):
            found.add(pid)
    return found


def exe_of(pid: int) -> str:
    """The executable path of ``pid`` ("" when it is gone)."""
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def kill_all(pids: Iterable[int], *, timeout: float = 10.0) -> None:
    """SIGKILL ``pids`` and wait until each is gone (or a zombie)."""
    targets = {pid for pid in pids if pid != os.getpid()}
    for pid in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_until(lambda: all(is_gone(pid) for pid in targets), timeout=timeout)


# -- cgroups -------------------------------------------------------------------


def cgroup_dirs(name_pattern: str) -> list[Path]:
    """Top-level cgroup directories called like ``name_pattern`` (v1 controllers and v2)."""
    regex = re.compile(name_pattern)
    found: list[Path] = []
    if not CGROUP_ROOT.is_dir():
        return found
    for base in [CGROUP_ROOT, *(p for p in CGROUP_ROOT.iterdir() if p.is_dir())]:
        try:
            entries = list(base.iterdir())
        except OSError:
            continue
        found.extend(p for p in entries if p.is_dir() and regex.fullmatch(p.name))
    return found


def pids_in_cgroups(dirs: Iterable[Path]) -> set[int]:
    """Every process in the given cgroups and their descendants."""
    found: set[int] = set()
    for top in dirs:
        for procs in top.rglob("cgroup.procs"):
            try:
                found.update(int(x) for x in procs.read_text().split())
            except (OSError, ValueError):
                continue
    return found


def remove_cgroups(dirs: Iterable[Path], *, timeout: float = 5.0) -> None:
    """rmdir the cgroup trees (deepest first), retrying while their tasks exit."""

    def attempt() -> bool:
        left = False
        for top in dirs:
            if not top.exists():
                continue
            for path in sorted((p for p in top.rglob("*") if p.is_dir()), reverse=True):
                _rmdir(path)
            left = not _rmdir(top) or left
        return not left

    wait_until(attempt, timeout=timeout, interval=0.1)


def _rmdir(path: Path) -> bool:
    try:
        path.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


# -- mounts ----------------------------------------------------------------------


def mountpoints_under(root: Path) -> list[Path]:
    """Mount points at or below ``root`` in this mount namespace, deepest first."""
    found: list[Path] = []
    prefix = str(root).rstrip("/")
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = _unescape(line.split()[4])
        if point == prefix or point.startswith(prefix + "/"):
            found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def unmount_all(root: Path) -> None:
    """Unmount everything mounted at or below ``root`` (lazily if busy)."""
    for point in mountpoints_under(root):
        if run(["umount", str(point)], check=False).returncode != 0:
            run(["umount", "-l", str(point)], check=False)


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


# -- network -----------------------------------------------------------------------


def netns_names(pattern: str) -> list[str]:
    """Named network namespaces (``ip netns``) matching ``pattern``."""
    listing = run(["ip", "netns", "list"], check=False).stdout
    names = [line.split()[0] for line in listing.splitlines() if line.strip()]
    return [name for name in names if re.fullmatch(pattern, name)]


def link_names(pattern: str) -> list[str]:
    """Network interfaces of the root namespace matching ``pattern``."""
    listing = run(["ip", "-o", "link", "show"], check=False).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in listing.splitlines()]
    return [name for name in names if re.fullmatch(pattern, name)]


def used_ipv4_addresses() -> set[str]:
    """Every IPv4 address configured in the root namespace."""
    listing = run(["ip", "-4", "-o", "addr", "show"], check=False).stdout
    return {line.split()[3].split("/")[0] for line in listing.splitlines() if "inet" in line}


RULE_CHAINS = (("filter", "FORWARD"), ("nat", "POSTROUTING"))


def forward_rules(comment: str) -> list[list[str]]:
    """Rules of FORWARD (and nat POSTROUTING) carrying exactly ``comment``, as argv lists.

    Each list starts with ``-t TABLE -A CHAIN``.
    """
    rules: list[list[str]] = []
    for table, chain in RULE_CHAINS:
        listing = run(["iptables", "-w", "-t", table, "-S", chain], check=False).stdout
        for line in listing.splitlines():
            words = shlex.split(line)
            if words[:1] == ["-A"] and _comment_of(words) == comment:
                rules.append(["-t", table, *words])
    return rules


def delete_forward_rules(comment: str) -> None:
    """Delete every rule of :func:`forward_rules` carrying exactly ``comment``."""
    for words in forward_rules(comment):
        table, rule = words[:2], words[3:]
        run(["iptables", "-w", *table, "-D", *rule], check=False)


def _comment_of(words: list[str]) -> str | None:
    for index, word in enumerate(words[:-1]):
        if word == "--comment":
            return words[index + 1]
    return None


def ssh_banner_ready(address: str, port: int = 22) -> bool:
    """True when an SSH server answers with its banner at ``address:port``."""
    try:
        with socket.create_connection((address, port), timeout=1.0) as sock:
            sock.settimeout(1.0)
            return sock.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def docker_ping(socket_path: Path) -> bool:
    """True when the Docker daemon at the unix socket answers ``/_ping``."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            sock.connect(str(socket_path))
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return b" 200 " in sock.recv(256)
    except OSError:
        return False

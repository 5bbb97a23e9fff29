"""Process trees and ports as Linux shows them in ``/proc``.

The supervisor starts every dev server in its own session, so signalling the
process group reaches the whole tree in the common case. These helpers cover
the rest: a descendant that moved into a session of its own (``setsid``), a
pid reused after its process ended (processes are identified by pid *and*
start time), and who already listens on a port. On systems without ``/proc``
they degrade to empty answers; the process-group signal still works.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcInfo:
    """One process as read from ``/proc/<pid>/stat``."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str
    starttime: int
    comm: str

    @property
    def key(self) -> tuple[int, int]:
        """Identity that survives pid reuse: ``(pid, start time)``."""
        return (self.pid, self.starttime)


def parse_stat(text: str) -> ProcInfo:
    """Parse the contents of ``/proc/<pid>/stat`` (``comm`` may hold spaces and parens)."""
    open_paren = text.index("(")
    close_paren = text.rindex(")")
    pid = int(text[:open_paren])
    comm = text[open_paren + 1 : close_paren]
    fields = text[close_paren + 2 :].split()
    # fields[0] is field 3 of proc(5): state, ppid, pgrp, session, ..., starttime (22).
    return ProcInfo(
        pid=pid,
        ppid=int(fields[1]),
        pgid=int(fields[2]),
        sid=int(fields[3]),
        state=fields[0],
        starttime=int(fields[19]),
        comm=comm,
    )


def read_proc(pid: int) -> ProcInfo | None:
    """The process ``pid`` now, or None when it does not exist."""
    try:
        return parse_stat((PROC / str(pid) / "stat").read_text())
    except (OSError, ValueError, IndexError):
        return None


def process_table() -> dict[int, ProcInfo]:
    """Every process visible in ``/proc``, by pid."""
    table: dict[int, ProcInfo] = {}
    try:
        entries = os.listdir(PROC)
    except OSError:
        return table
    for entry in entries:
        if entry.isdigit():
            info = read_proc(int(entry))
            if info is not None:
                table[info.pid] = info
    return table


def descendants(roots: Iterable[int], table: Mapping[int, ProcInfo]) -> list[ProcInfo]:
    """The processes in ``table`` below any of ``roots`` (by parent links), roots excluded."""
    children: dict[int, list[ProcInfo]] = {}
    for info in table.values():
        children.setdefault(info.ppid, []).append(info)
    found: list[ProcInfo] = []
    todo = list(roots)
    seen = set(todo)
    while todo:
        for child in children.get(todo.pop(), []):
            if child.pid not in seen:
                seen.add(child.pid)
                found.append(child)
                todo.append(child.pid)
    return found


def tree_of(leader: int, table: Mapping[int, ProcInfo]) -> list[ProcInfo]:
    """``leader``, its descendants, and every member of its process group and session."""
    members = {info.pid: info for info in descendants([leader], table)}
    for info in table.values():
        if leader in (info.pgid, info.sid):
            members[info.pid] = info
    if leader in table:
        members[leader] = table[leader]
    return list(members.values())


def is_alive(ref: ProcInfo) -> bool:
    """Whether the process ``ref`` still runs (a zombie or a reused pid counts as gone)."""
    now = read_proc(ref.pid)
    return now is not None and now.starttime == ref.starttime and now.state not in ("Z", "X")


def signal_process(ref: ProcInfo, sig: signal.Signals) -> None:
    """Send ``sig`` to ``ref`` if it is still that same process."""
    if is_alive(ref):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(ref.pid, sig)


def signal_group(pgid: int, sig: signal.Signals) -> bool:
    """Send ``sig`` to process group ``pgid``; False when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def spawn(
    argv: Sequence[str], *, cwd: Path | None, env: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session with piped stdout/stderr and no stdin."""
    return subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        close_fds=True,
    )


def cmdline(pid: int, limit: int = 80) -> str:
    """The command line of ``pid`` as one string (shortened), or its ``comm``."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        raw = b""
    text = " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)
    if not text:
        info = read_proc(pid)
        text = info.comm if info else "?"
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class PortHolder:
    """A process that has a listening socket on a port."""

    pid: int
    command: str

    def describe(self) -> str:
        return f"pid {self.pid} ({self.command})"


def listening_inodes(port: int) -> set[int]:
    """Socket inodes listening on TCP ``port`` (any address, IPv4 or IPv6)."""
    inodes: set[int] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != "0A":  # 0A = TCP_LISTEN
                continue
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(int(fields[9]))
    return inodes


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something already listens on ``port`` (or ``host:port`` cannot be bound)."""
    if listening_inodes(port):
        return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR: a socket left in TIME_WAIT is not "in use" for a new server.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def port_holders(port: int) -> list[PortHolder]:
    """Processes holding a listening socket on ``port``, as far as ``/proc`` lets us see."""
    wanted = {f"socket:[{inode}]" for inode in listening_inodes(port)}
    if not wanted:
        return []
    holders: list[PortHolder] = []
    for pid in sorted(process_table()):
        fd_dir = PROC / str(pid) / "fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # not ours to look at, or gone
        for fd in fds:
            try:
                target = os.readlink(fd_dir / fd)
            except OSError:
                continue
            if target in wanted:
                holders.append(PortHolder(pid=pid, command=cmdline(pid)))
                break
    return holders

"""Managed ``/etc/hosts`` lines for dev domains outside ``*.localhost``.

Names under ``.localhost`` need no entry: resolvers map them to loopback
(:func:`hosts_entries_needed` says which names do). The others get one block
per project::

    # stagecraft:shop begin
    127.0.0.1	app.shop.test
    127.0.0.1	api.shop.test
    # stagecraft:shop end

Adding is idempotent (an existing block, e.g. left by a crashed run, is
replaced in place); removing restores the file byte for byte: every other line,
blank lines, whitespace, CRLF line ends and a missing final newline are kept.
The block records one fact in its own shape: when the original file did not
end with a newline, the block is appended after one that Stagecraft added and
ends without one itself, so removal knows to take that newline away again.

Example::

    hosts = HostsFile("shop")             # /etc/hosts; path= for tests
    hosts.add(hosts_entries_needed(["app.shop.test", "api.shop.localhost"]))
    ...
    hosts.remove()
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import ipaddress
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from stagecraft.errors import StagecraftError

DEFAULT_PATH = Path("/etc/hosts")
DEFAULT_ADDRESS = "127.0.0.1"
_LINES = re.compile(r"[^\n]*\n|[^\n]+$")


class HostsFileError(StagecraftError):
    """The hosts file cannot be read or changed, or a name cannot be put in it."""


def needs_hosts_entry(name: str) -> bool:
    """Whether ``name`` needs a hosts-file entry (not ``localhost``, ``*.localhost`` or an IP)."""
    host = name.strip().lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


def hosts_entries_needed(names: Iterable[str]) -> list[str]:
    """The names of ``names`` that need a hosts-file entry, normalised, sorted, unique.

    A wildcard outside ``.localhost`` cannot be expressed in a hosts file:
    :class:`HostsFileError` asks for the concrete names instead.
    """
    needed: set[str] = set()
    for name in names:
        if not needs_hosts_entry(name):
            continue
        host = name.strip().lower().rstrip(".")
        if "*" in host:
            raise HostsFileError(
                f"{name} is a wildcard, which a hosts file cannot map",
                hint="list the concrete hostnames, or use a dev domain under .localhost",
            )
        needed.add(host)
    return sorted(needed)


def markers(project: str) -> tuple[str, str]:
    """The begin and end marker lines of ``project``'s block."""
    if not project or any(c.isspace() for c in project):
        raise ValueError(f"project name {project!r} cannot mark a hosts-file block")
    return f"# stagecraft:{project} begin", f"# stagecraft:{project} end"


def split_lines(text: str) -> list[str]:
    """``text`` as lines that keep their line ends (only ``\\n`` ends a line)."""
    return _LINES.findall(text)


def find_blocks(lines: Sequence[str], project: str) -> list[tuple[int, int]]:
    """``(begin, end)`` line indexes (inclusive) of ``project``'s blocks."""
    begin_marker, end_marker = markers(project)
    blocks: list[tuple[int, int]] = []
    start: int | None = None
    for index, line in enumerate(lines):
        content = line.strip()
        if content == begin_marker:
            if start is not None:
                raise _unterminated(project, start)
            start = index
        elif content == end_marker:
            if start is None:
                raise HostsFileError(
                    f"hosts file: line {index + 1} ends a stagecraft:{project} block "
                    "that never began",
                    hint="remove the stray marker line by hand",
                )
            blocks.append((start, index))
            start = None
    if start is not None:
        raise _unterminated(project, start)
    return blocks


def _unterminated(project: str, index: int) -> HostsFileError:
    return HostsFileError(
        f"hosts file: the stagecraft:{project} block at line {index + 1} has no end marker",
        hint=f"remove the block's lines by hand, or add '# stagecraft:{project} end' after them",
    )


def managed_names(text: str, project: str) -> list[str]:
    """The hostnames in ``project``'s block(s) of ``text``."""
    lines = split_lines(text)
    names: list[str] = []
    for begin, end in find_blocks(lines, project):
        for line in lines[begin + 1 : end]:
            names.extend(line.split()[1:])
    return names


def add_entries(
    text: str, project: str, names: Sequence[str], address: str = DEFAULT_ADDRESS
) -> str:
    """``text`` with ``project``'s block holding exactly ``names`` (an existing one replaced)."""
    if len(find_blocks(split_lines(text), project)) > 1:
        text = _without(text, project, keep_first=True)  # duplicates from a hand edit
    lines = split_lines(text)
    blocks = find_blocks(lines, project)
    newline = _newline_style(lines)
    begin_marker, end_marker = markers(project)
    block = [begin_marker, *(f"{address}\t{name}" for name in names), end_marker]
    if blocks:
        begin, end = blocks[0]
        new = [line + newline for line in block]
        if not lines[end].endswith("\n"):  # the block ends the file, without a newline
            new[-1] = block[-1]
        return "".join(lines[:begin] + new + lines[end + 1 :])
    if not text:
        return "".join(line + newline for line in block)
    if text.endswith("\n"):
        return text + "".join(line + newline for line in block)
    # The original lacks a final newline: ours goes before the block, and the
    # block ends without one, which is how removal knows to take it away again.
    return text + newline + newline.join(block)


def remove_entries(text: str, project: str) -> str:
    """``text`` without ``project``'s block(s): byte for byte what it was before adding."""
    return _without(text, project, keep_first=False)


def _without(text: str, project: str, *, keep_first: bool) -> str:
    lines = split_lines(text)
    blocks = find_blocks(lines, project)
    if keep_first:
        blocks = blocks[1:]
    for begin, end in reversed(blocks):
        ours_newline = not lines[end].endswith("\n") and begin > 0
        del lines[begin : end + 1]
        if ours_newline and lines:
            last = lines[-1]
            lines[-1] = last[:-2] if last.endswith("\r\n") else last[:-1]
    return "".join(lines)


def _newline_style(lines: Sequence[str]) -> str:
    for line in lines:
        if line.endswith("\n"):
            return "\r\n" if line.endswith("\r\n") else "\n"
    return "\n"


class HostsFile:
    """``project``'s managed block in the hosts file at ``path``.

    Writes are atomic (a temp file in the same directory, renamed over the
    original, keeping its mode and owner) and serialised between Stagecraft
    runs by a lock on the directory.
    """

    def __init__(
        self, project: str, path: Path = DEFAULT_PATH, *, address: str = DEFAULT_ADDRESS
    ) -> None:
        markers(project)
        self.project = project
        self.path = path
        self.address = address

    def names(self) -> list[str]:
        """The hostnames currently in this project's block."""
        return managed_names(self._read(), self.project)

    def add(self, names: Iterable[str]) -> bool:
        """Make the block hold exactly ``names`` (no block when empty); True if the file changed."""
        wanted = sorted({name.strip().lower().rstrip(".") for name in names})
        if any(not name or "*" in name or any(c.isspace() for c in name) for name in wanted):
            raise HostsFileError(
                f"cannot put {', '.join(wanted)} in {self.path}: not all are plain hostnames",
                hint="pass concrete hostnames (see hosts_entries_needed)",
            )
        if not wanted:
            return self.remove()
        return self._update(lambda text: add_entries(text, self.project, wanted, self.address))

    def remove(self) -> bool:
        """Remove this project's block; True if the file changed."""
        if not self.path.exists():
            return False
        return self._update(lambda text: remove_entries(text, self.project))

    def _read(self) -> str:
        try:
            return self.path.read_bytes().decode("utf-8", "surrogateescape")
        except FileNotFoundError:
            return ""
        except PermissionError:
            raise self._denied("read") from None

    def _update(self, change: Callable[[str], str]) -> bool:
        try:
            with _locked(self.path.parent):
                before = self._read()
                after = change(before)
                if after == before:
                    return False
                _write(self.path, after.encode("utf-8", "surrogateescape"))
        except PermissionError:
            raise self._denied("modify") from None
        except OSError as exc:
            raise HostsFileError(
                f"cannot modify {self.path}: {exc.strerror or exc}",
                hint="check the file system is writable",
            ) from None
        return True

    def _denied(self, what: str) -> HostsFileError:
        return HostsFileError(
            f"cannot {what} {self.path}: permission denied",
            hint=(
                f"run with sudo (or give your user write access to {self.path}), "
                "use a dev domain under .localhost, which needs no hosts entries, "
                "or turn off dev.hosts_file"
            ),
        )


def _write(path: Path, data: bytes) -> None:
    """Replace ``path``'s content with ``data`` atomically, keeping mode and owner."""
    try:
        st = path.stat()
    except FileNotFoundError:
        st = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.stagecraft-", dir=path.parent)
    except PermissionError:
        if st is None or not os.access(path, os.W_OK):
            raise
        # Write access to the file but not to its directory: no temp file is
        # possible next to it, so write in place.
        _write_in_place(path, data)
        return
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), (st.st_mode & 0o7777) if st else 0o644)
            if st is not None and os.geteuid() == 0:
                os.fchown(handle.fileno(), st.st_uid, st.st_gid)
        try:
            os.replace(tmp, path)
        except OSError as exc:
            if exc.errno not in (errno.EBUSY, errno.EXDEV, errno.EPERM, errno.EACCES):
                raise
            # In a container /etc/hosts is a bind mount: rename() over a mount
            # point fails (EBUSY). Writing in place is not atomic, but it is the
            # only way to change the file there; the lock keeps our runs apart.
            _write_in_place(path, data)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _write_in_place(path: Path, data: bytes) -> None:
    with path.open("r+b") as handle:
        handle.write(data)
        handle.truncate()
        handle.flush()
        os.fsync(handle.fileno())


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive lock on ``directory``: the file itself is replaced, so it cannot hold one."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)

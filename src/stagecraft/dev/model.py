"""Values the dev supervisor takes and reports: process specs, states, events, its error."""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from stagecraft.dev.restart import RestartPolicy
from stagecraft.errors import StagecraftError
from stagecraft.providers.backend import DevProcess, Readiness


@dataclass(frozen=True)
class ProcessSpec:
    """One long-lived dev process to supervise.

    ``env`` is added on top of the supervisor's own environment and may hold
    secrets, so it is kept out of ``repr``. ``port`` is where the process
    listens on 127.0.0.1 (checked to be free before start; probed when
    ``readiness`` is an HTTP path). ``readiness.timeout`` bounds the wait for
    readiness. On stop, ``stop_signal`` goes to the whole process group, and
    whatever still runs after ``stop_timeout`` seconds is killed.

    Example::

        ProcessSpec(
            name="api",
            argv=("node", "server.js"),
            cwd=Path("api"),
            env={"PORT": "4000"},
            port=4000,
            readiness=Readiness(http_path="/healthz", timeout=30),
            restart=RestartPolicy.parse("on-failure:3"),
        )
    """

    name: str
    argv: tuple[str, ...]
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    port: int | None = None
    readiness: Readiness = field(default_factory=Readiness)
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout: float = 10.0
    restart: RestartPolicy = field(default_factory=RestartPolicy)

    def __post_init__(self) -> None:
        if not self.name or any(c.isspace() for c in self.name):
            raise ValueError(f"process name {self.name!r} must be a non-empty word")
        if not self.argv:
            raise ValueError(f"process {self.name!r} has an empty command")
        if self.port is not None and not 0 < self.port < 65536:
            raise ValueError(f"process {self.name!r}: port {self.port} is out of range")
        if self.readiness.kind == "http" and self.port is None:
            raise ValueError(f"process {self.name!r}: HTTP readiness needs a port")
        if self.stop_timeout <= 0:
            raise ValueError(f"process {self.name!r}: stop_timeout must be positive")

    @classmethod
    def from_dev_process(cls, dev: DevProcess, restart: RestartPolicy | None = None) -> ProcessSpec:
        """The spec for a provider's :class:`~stagecraft.providers.backend.DevProcess`."""
        return cls(
            name=dev.name,
            argv=tuple(dev.argv),
            cwd=dev.cwd,
            env=dict(dev.env),
            port=dev.port,
            readiness=dev.readiness,
            stop_signal=dev.signal,
            stop_timeout=dev.stop_timeout,
            restart=restart or RestartPolicy(),
        )


class ProcessState(StrEnum):
    """Where a supervised process is in its life."""

    PENDING = "pending"
    STARTING = "starting"
    READY = "ready"
    RESTARTING = "restarting"
    EXITED = "exited"
    CRASHED = "crashed"
    FAILED = "failed"
    STOPPING = "stopping"
    STOPPED = "stopped"


class EventKind(StrEnum):
    """What happened to a supervised process."""

    STARTED = "started"
    READY = "ready"
    FAILED = "failed"
    CRASHED = "crashed"
    EXITED = "exited"
    RESTARTING = "restarting"
    STOPPED = "stopped"


@dataclass(frozen=True)
class ProcessEvent:
    """One event of a supervised process, for the CLI to render.

    ``exit_code`` is the raw return code (negative: killed by that signal);
    ``last_lines`` the process's last output lines (for crashes and failures).
    """

    name: str
    kind: EventKind
    message: str
    pid: int | None = None
    exit_code: int | None = None
    last_lines: tuple[str, ...] = ()
    attempt: int = 0

    def describe(self) -> str:
        """``name: message`` in one line."""
        return f"{self.name}: {self.message}"


EventSink = Callable[[ProcessEvent], None]


@dataclass(frozen=True)
class ProcessStatus:
    """A supervised process right now, for the summary table."""

    name: str
    state: ProcessState
    pid: int | None
    port: int | None
    restarts: int
    exit_code: int | None
    ready_after: float | None
    uptime: float | None = None
    """Seconds since the current run started (None: not running)."""


class DevProcessError(StagecraftError):
    """A dev process could not start, did not become ready, or its port is taken.

    The message names the process and the reason in one line; ``last_lines``
    (shown under it by :meth:`lines`) are its last output lines, if any.
    """

    def __init__(
        self,
        name: str,
        reason: str,
        *,
        last_lines: Sequence[str] = (),
        hint: str | None = None,
    ) -> None:
        super().__init__(f"{name}: {reason}", hint=hint)
        self.name = name
        self.reason = reason
        self.last_lines = tuple(last_lines)

    def lines(self) -> list[str]:
        if not self.last_lines:
            return [self.message]
        return [self.message, f"last output of {self.name}:"] + [
            f"  {line}" for line in self.last_lines
        ]


def describe_exit(code: int) -> str:
    """``exited with code 3`` or ``was killed by SIGKILL``."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"

"""A service's logs across every host that runs it: the engine of ``stagecraft logs``.

:func:`find_targets` reads the hosts' containers (labels, ADR 0005) and picks the
containers of one service: the running ones, else the newest one (so a crashed
service's last words can be read). :func:`fetch_logs` reads them all in parallel
and merges the lines by Docker's timestamps; :func:`follow_logs` streams every
container at once until :meth:`LogFollower.stop` or Ctrl-C. Every line goes to a
sink as ``(label, stream, text)`` with labels ``host/service`` (``host/service-2``
for a second replica on the same host).

Each remote ``docker logs`` runs under a small shell wrapper that also reads the
SSH session's stdin: when the local ssh goes away (Ctrl-C, :meth:`stop`) stdin
reaches end of file and the wrapper kills ``docker logs -f``, so nothing is left
behind on the host either.

Example::

    from stagecraft.ops.logs import LogOptions, fetch_logs, find_targets, parse_since

    found = find_targets(hosts, project="shop", env="production", service="web")
    for line in fetch_logs(found.targets, LogOptions(since=parse_since("10m"), tail=100)):
        print(line.label, "|", line.text)
"""

from __future__ import annotations

import os
import re
import shlex
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field

from stagecraft.config.durations import parse_duration
from stagecraft.deploy.state.containers import read_states
from stagecraft.errors import UsageError
from stagecraft.runtime.fanout import describe, fan_out
from stagecraft.runtime.ssh import SSHHost

LogSink = Callable[[str, str, str], None]
"""Called as ``sink(label, stream, text)``; ``stream`` is ``"stdout"`` or ``"stderr"``."""

_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?"
)
_DOCKER_TS = re.compile(r"^(\d{4}-\d{2}-\d{2}T\S+) (.*)$", re.DOTALL)


@dataclass(frozen=True)
class LogTarget:
    """One container whose logs are read: where it runs and how lines are labelled."""

    host: SSHHost
    container: str
    label: str


@dataclass(frozen=True)
class Targets:
    """The containers of a service, plus the hosts that could not be read (name -> why)."""

    targets: tuple[LogTarget, ...]
    unreachable: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LogOptions:
    """``docker logs`` flags: ``since`` as :func:`parse_since` returns it, ``tail`` lines."""

    since: str | None = None
    tail: int | None = None
    timestamps: bool = False


@dataclass(frozen=True)
class LogLine:
    """One line of one container; ``time`` is Docker's timestamp ('' when it had none)."""

    label: str
    stream: str
    time: str
    text: str


def parse_since(text: str) -> str:
    """``--since`` as Docker takes it: a duration (the config's grammar:
    :mod:`stagecraft.config.durations`) as seconds, or a date/time.

    >>> parse_since("1h30m"), parse_since("2d"), parse_since("90s"), parse_since("500ms")
    ('5400s', '172800s', '90s', '0.5s')
    >>> parse_since("2026-11-24T10:00:00Z")
    '2026-11-24T10:00:00Z'
    """
    value = text.strip()
    if value and not value.replace(".", "", 1).isdigit():  # a bare number is ambiguous
        try:
            seconds = parse_duration(value)
        except ValueError:
            pass
        else:
            whole = seconds == int(seconds)
            return f"{int(seconds)}s" if whole else f"{seconds:.3f}".rstrip("0") + "s"
    if _TIMESTAMP.fullmatch(value):
        return value
    raise UsageError(
        f"--since {text!r} is neither a duration nor a date",
        hint="use a duration such as 30s, 10m, 1h30m or 2d, or a time such as 2026-11-24T10:00:00Z",
    )


def find_targets(
    hosts: Sequence[SSHHost], *, project: str, env: str, service: str, parallel: int = 8
) -> Targets:
    """The containers of ``service`` on ``hosts`` (running ones, else the newest per host)."""
    result = read_states(hosts, project=project, env=env, parallel=parallel)
    by_name = {h.name: h for h in hosts}
    targets: list[LogTarget] = []
    unreachable: dict[str, str] = {}
    for outcome in result.outcomes:
        if not outcome.ok or outcome.value is None:
            unreachable[outcome.name] = describe(outcome.name, outcome.error)
            continue
        containers = outcome.value.services.get(service, ())
        chosen = [c for c in containers if c.running] or list(containers[:1])
        for index, container in enumerate(chosen, start=1):
            suffix = f"-{index}" if len(chosen) > 1 else ""
            label = f"{outcome.name}/{service}{suffix}"
            targets.append(LogTarget(by_name[outcome.name], container.id, label))
    return Targets(tuple(targets), unreachable)


def logs_script(container: str, options: LogOptions, *, follow: bool) -> str:
    """The remote command line running ``docker logs``; ``follow`` ends with the SSH session."""
    argv = ["docker", "logs", "--timestamps"]
    if follow:
        argv.append("--follow")
    if options.since:
        argv += ["--since", options.since]
    if options.tail is not None:
        argv += ["--tail", str(options.tail)]
    argv.append(container)
    if not follow:
        return shlex.join(argv)
    # fd 3 keeps the session's stdin: background jobs get /dev/null as stdin in sh.
    return (
        f"exec 3<&0; {shlex.join(argv)} & p=$!; "
        "{ cat <&3 >/dev/null; kill $p 2>/dev/null; } </dev/null >/dev/null 2>&1 & "
        "wait $p"
    )


def split_timestamp(raw: str) -> tuple[str, str]:
    """``(timestamp, text)`` of a ``docker logs --timestamps`` line (pure)."""
    match = _DOCKER_TS.match(raw)
    if match is None:
        return "", raw
    return match.group(1), match.group(2)


def fetch_logs(
    targets: Sequence[LogTarget], options: LogOptions, *, parallel: int = 8
) -> list[LogLine]:
    """Every target's logs, merged by time; raises the first failure after all were read."""

    def read(target: LogTarget) -> list[LogLine]:
        lines: list[LogLine] = []
        script = logs_script(target.container, options, follow=False)
        target.host.run(
            script,
            on_line=lambda stream, raw: lines.append(_line(target.label, stream, raw)),
        )
        return lines

    result = fan_out(list(targets), read, name=lambda t: t.label, parallel=parallel)
    result.raise_for_failures("containers")
    merged = [line for outcome in result.outcomes for line in outcome.value or ()]
    return sorted(merged, key=lambda line: line.time)


class LogFollower:
    """Streams every target's ``docker logs -f`` to a sink until stopped.

    :meth:`run` blocks (Ctrl-C stops every stream: ``fan_out`` terminates the ssh
    processes); :meth:`stop`, from another thread, ends the streams cleanly by
    closing their stdin.
    """

    def __init__(self, targets: Sequence[LogTarget], options: LogOptions, sink: LogSink) -> None:
        self.targets = list(targets)
        self.options = options
        self.sink = sink
        self._pipes: list[tuple[int, int]] = [os.pipe() for _ in self.targets]
        self._lock = threading.Lock()
        self._stopped = False

    def run(self) -> dict[str, str]:
        """Follow until every stream ends; returns label -> error for streams that failed."""
        items = list(zip(self.targets, self._pipes, strict=True))
        try:
            result = fan_out(
                items, self._follow, name=lambda item: item[0].label, parallel=len(items) or 1
            )
        finally:
            self.stop()
            for read_end, _ in self._pipes:
                _close(read_end)
        return {o.name: describe(o.name, o.error) for o in result.failed}

    def stop(self) -> None:
        """End every stream: closing their stdin makes the remote wrappers exit."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        for _, write_end in self._pipes:
            _close(write_end)

    def _follow(self, item: tuple[LogTarget, tuple[int, int]]) -> None:
        target, (read_end, _) = item
        script = logs_script(target.container, self.options, follow=True)
        # Not closed here: the feeding thread may still be reading it after Ctrl-C;
        # run() closes the descriptor once stop() has made it reach end of file.
        stdin = os.fdopen(read_end, "rb", buffering=0, closefd=False)
        target.host.run(
            ["sh", "-c", script],
            input=stdin,
            check=False,
            on_line=lambda stream, raw: self._emit(target.label, stream, raw),
        )

    def _emit(self, label: str, stream: str, raw: str) -> None:
        line = _line(label, stream, raw)
        self.sink(label, stream, render_text(line, self.options))


def follow_logs(targets: Sequence[LogTarget], options: LogOptions, sink: LogSink) -> dict[str, str]:
    """Stream every target until Ctrl-C (see :class:`LogFollower`); label -> error of failures."""
    return LogFollower(targets, options, sink).run()


def render_text(line: LogLine, options: LogOptions) -> str:
    """The text shown for ``line``: with its timestamp only when asked for."""
    if options.timestamps and line.time:
        return f"{line.time} {line.text}"
    return line.text


def _line(label: str, stream: str, raw: str) -> LogLine:
    time, text = split_timestamp(raw)
    return LogLine(label, stream, time, text)


def _close(fd: int) -> None:
    with suppress(OSError):
        os.close(fd)

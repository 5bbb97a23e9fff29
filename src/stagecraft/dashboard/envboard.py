"""What the environment dashboard shows, read through the engine of the CLI commands.

:class:`EnvSources` binds an environment to the functions ``status``,
``releases``, ``lock status``, ``logs -f`` and ``rollback`` call
(:func:`~stagecraft.ops.status.collect_status`,
:func:`~stagecraft.deploy.state.ledger.history`, :func:`~stagecraft.deploy.state.lock.status`,
:class:`~stagecraft.ops.logs.LogFollower`,
:func:`~stagecraft.deploy.pipeline.rollback`). :class:`EnvBoard` reads them at
most once per ``interval`` (one read at a time; every page in between gets the
cached :class:`Snapshot`), shapes them into plain values for the templates and
the JSON API, runs one rollback at a time in the background, and follows a
service's logs. Every string it hands out went through
:func:`stagecraft.redact.redact` (declared secrets of the environment and
password syntax), like the CLI's output.

Example::

    board = EnvBoard(EnvSources.for_environment(loaded, "production"), interval=5)
    snap = board.snapshot()          # reads the hosts, or the cache younger than 5 s
    snap.hosts[0]["services"][0]["release"]
    board.start_rollback(snap.releases[1]["id"])
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from stagecraft.errors import StagecraftError, UsageError
from stagecraft.redact import redact

if TYPE_CHECKING:
    from stagecraft.config.loader import LoadedConfig
    from stagecraft.deploy.state.ledger import History, Release
    from stagecraft.deploy.state.lock import LockInfo
    from stagecraft.ops.logs import LogSink
    from stagecraft.ops.status import EnvStatus
    from stagecraft.runtime.ssh import SSHOptions

Progress = Callable[[str], None]
"""Where the lines of a running rollback go."""

MAX_FOLLOWERS = 4
_FOLLOWER_IDS = itertools.count(1)
ACTION_LINES = 200


@dataclass(frozen=True)
class EnvSources:
    """How one environment is read and changed (the same calls as the CLI commands)."""

    project: str
    env: str
    services: tuple[str, ...]
    read_status: Callable[[], EnvStatus]
    read_history: Callable[[], History]
    read_lock: Callable[[], LockInfo | None]
    rollback: Callable[[str, Progress], str]
    """Roll back to a release id; returns the new release id. Raises on failure."""
    follow: Callable[[str, LogSink], Callable[[], None]]
    """Start following a service's logs into a sink; returns the function that stops it."""

    @classmethod
    def for_environment(cls, loaded: LoadedConfig, env: str) -> EnvSources:
        """The sources of ``env`` of a loaded project (its compose model loaded)."""
        loaded.environment(env)  # unknown names fail here, with the known ones
        project = loaded.config.project.name
        _remember_secrets(loaded, env)
        services = sorted(loaded.compose.services) if loaded.compose is not None else []
        return cls(
            project=project,
            env=env,
            services=tuple(services),
            read_status=lambda: _read_status(loaded, env),
            read_history=lambda: _read_history(loaded, env),
            read_lock=lambda: _read_lock(loaded, env),
            rollback=lambda release, say: _rollback(loaded, env, release, say),
            follow=lambda service, sink: _follow(loaded, env, service, sink),
        )


@dataclass(frozen=True)
class Snapshot:
    """One read of the environment, shaped for the page (every string redacted)."""

    project: str
    env: str
    read_at: float
    """``time.time()`` of the read."""
    took: float
    hosts: list[dict[str, Any]]
    releases: list[dict[str, Any]]
    lock: dict[str, Any] | None
    errors: list[str] = field(default_factory=list)
    """What could not be read (hosts unreachable, a ledger not read), one line each."""
    current: str | None = None
    """The release the newest successful deploy or rollback installed."""

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "env": self.env,
            "read_at": self.read_at,
            "took": round(self.took, 3),
            "hosts": self.hosts,
            "releases": self.releases,
            "lock": self.lock,
            "errors": self.errors,
            "current": self.current,
        }


@dataclass
class Action:
    """The rollback started from the page: its target, progress lines and outcome."""

    kind: str
    target: str
    version: str
    started: float
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=ACTION_LINES))
    outcome: str = "running"
    """``running``, ``succeeded`` or ``failed``."""
    result: str | None = None
    """The new release id (succeeded) or the error message (failed)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target": self.target,
            "version": self.version,
            "outcome": self.outcome,
            "result": self.result,
            "lines": list(self.lines),
        }


class EnvBoard:
    """Cached, bounded reads of one environment and its one running action."""

    def __init__(
        self,
        sources: EnvSources,
        *,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sources = sources
        self.interval = interval
        self._clock = clock
        self._cache: Snapshot | None = None
        self._cached_at = 0.0
        self._fetch = threading.Lock()
        self._state = threading.Lock()
        self._action: Action | None = None
        self._followers = 0
        self.reads = 0
        """How many times the hosts were read (the cache's hit rate shows in tests)."""

    # -- reading -------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The cached snapshot, or a fresh read when it is older than ``interval``.

        One read at a time: callers arriving during a read wait for it and get
        its result instead of starting another.
        """
        with self._fetch:
            if self._cache is not None and self._clock() - self._cached_at < self.interval:
                return self._cache
            started = self._clock()
            snap = self._read()
            self._cached_at = self._clock()
            self._cache = replace(snap, took=self._cached_at - started)
            self.reads += 1
            return self._cache

    def invalidate(self) -> None:
        """Make the next :meth:`snapshot` read the hosts again."""
        with self._fetch:
            self._cache = None

    def _read(self) -> Snapshot:
        src = self.sources
        errors: list[str] = []
        hosts: list[dict[str, Any]] = []
        releases: list[dict[str, Any]] = []
        lock: dict[str, Any] | None = None
        current: str | None = None
        try:
            status = src.read_status()
            hosts = shape_status(status)
            errors += [f"{h.host}: unreachable: {h.error}" for h in status.unreachable]
        except StagecraftError as exc:
            errors.append(f"status: {exc.message}")
        try:
            history = src.read_history()
            releases = shape_releases(history.releases)
            current = current_release(history.releases)
            attach_images(hosts, history.releases)
            errors += [f"{h}: ledger not read: {why}" for h, why in history.unreachable.items()]
        except StagecraftError as exc:
            errors.append(f"releases: {exc.message}")
        try:
            lock = shape_lock(src.read_lock())
        except StagecraftError as exc:
            errors.append(f"lock: {exc.message}")
        return Snapshot(
            project=src.project,
            env=src.env,
            read_at=time.time(),
            took=0.0,
            hosts=redacted(hosts),
            releases=redacted(releases),
            lock=redacted(lock),
            errors=redacted(errors),
            current=current,
        )

    # -- rollback ------------------------------------------------------------------------

    @property
    def action(self) -> Action | None:
        """The rollback started last from the page (running or finished)."""
        return self._action

    def start_rollback(self, release_id: str) -> Action:
        """Roll back to ``release_id`` in the background (UsageError: unknown, or one runs)."""
        snap = self._cache or self.snapshot()
        target = next((r for r in snap.releases if r["id"] == release_id), None)
        if target is None or not target["deployable"]:
            raise UsageError(
                f"{self.sources.env}: no release {release_id} to roll back to",
                hint="pick one of the releases listed on the page",
            )
        with self._state:
            if self._action is not None and self._action.outcome == "running":
                raise UsageError(
                    f"{self.sources.env}: a rollback to {self._action.target} is still running",
                    hint="wait for it to finish",
                )
            action = Action("rollback", release_id, str(target["version"]), time.time())
            self._action = action
        thread = threading.Thread(
            target=self._run_rollback, args=(action,), name="dashboard-rollback", daemon=True
        )
        thread.start()
        return action

    def _run_rollback(self, action: Action) -> None:
        def say(line: str) -> None:
            action.lines.append(redact(line))

        try:
            new_id = self.sources.rollback(action.target, say)
        except Exception as exc:  # every failure is shown on the page, not raised
            message = exc.message if isinstance(exc, StagecraftError) else repr(exc)
            for line in _failure_lines(exc):
                say(line)
            action.result = redact(message)
            action.outcome = "failed"
        else:
            action.result = new_id
            action.outcome = "succeeded"
        finally:
            self.invalidate()

    # -- logs ----------------------------------------------------------------------------

    def follow(self, service: str, sink: LogSink) -> Callable[[], None]:
        """Follow ``service``'s logs on every host into ``sink`` (lines redacted).

        UsageError for an unknown service or when :data:`MAX_FOLLOWERS` streams
        already run; call the returned function to stop.
        """
        if service not in self.sources.services:
            known = ", ".join(self.sources.services)
            raise UsageError(f"no service {service!r}", hint=f"services: {known}")
        with self._state:
            if self._followers >= MAX_FOLLOWERS:
                raise UsageError(
                    f"already following {MAX_FOLLOWERS} log streams",
                    hint="close another log view first",
                )
            self._followers += 1

        def safe(label: str, stream: str, text: str) -> None:
            sink(label, stream, redact(text))

        try:
            stop = self.sources.follow(service, safe)
        except BaseException:
            self._release_follower()
            raise
        stopped = threading.Event()

        def stop_once() -> None:
            if not stopped.is_set():
                stopped.set()
                stop()
                self._release_follower()

        return stop_once

    def _release_follower(self) -> None:
        with self._state:
            self._followers -= 1


def _failure_lines(exc: BaseException) -> list[str]:
    """The per-host outcome of a failed rollout (what the CLI prints at its end), if any."""
    from stagecraft.deploy.rollout.result import DeployFailed, render_result

    if isinstance(exc, DeployFailed):
        return render_result(exc.result).splitlines()
    return []


# -- shaping (pure) ------------------------------------------------------------------------


def shape_status(status: EnvStatus) -> list[dict[str, Any]]:
    """Hosts x services as the page shows them (``status --json`` plus the uptime text)."""
    from stagecraft.ops.status import format_uptime

    hosts = []
    for host in status.hosts:
        row = host.to_json()
        for service, shaped in zip(host.services, row["services"], strict=True):
            shaped["uptime"] = format_uptime(service.uptime)
            shaped["image"] = None
        hosts.append(row)
    return hosts


def attach_images(hosts: list[dict[str, Any]], releases: Sequence[Release]) -> None:
    """Fill each status row's ``image`` from the ledger record of the release it runs.

    Containers carry the release id in their labels; the image that release
    put on that host for that service is in the host's ledger record.
    """
    by_id = {release.id: release for release in releases}
    for host in hosts:
        for row in host["services"]:
            release = by_id.get(row["release"] or "")
            record = release.hosts.get(host["host"]) if release is not None else None
            service = record.services.get(row["service"]) if record is not None else None
            row["image"] = service.image if service is not None else None


def shape_releases(releases: Sequence[Release]) -> list[dict[str, Any]]:
    """Newest first, as ``releases --json`` lists them, with per-host outcomes and images."""
    shaped = []
    for release in releases:
        hosts = [
            {
                "host": name,
                "outcome": record.outcome,
                "recorded": True,
                "duration": record.duration,
                "services": {
                    svc_name: {"image": svc.image, "outcome": svc.outcome, "error": svc.error}
                    for svc_name, svc in sorted(record.services.items())
                },
            }
            for name, record in release.hosts.items()
        ]
        hosts += [
            {"host": name, "outcome": outcome, "recorded": False, "duration": None, "services": {}}
            for name, outcome in release.unrecorded.items()
        ]
        shaped.append(
            {
                "id": release.id,
                "version": release.version,
                "command": release.command,
                "by": release.by,
                "started_at": release.started_at,
                "finished_at": release.finished_at,
                "outcome": release.outcome,
                "hosts": hosts,
                "images": sorted(release.images),
                "deployable": release.deployed and release.outcome == "success",
            }
        )
    return shaped


def current_release(releases: Sequence[Release]) -> str | None:
    """The newest successful deploy or rollback: what the hosts run."""
    for release in releases:
        if release.deployed and release.outcome == "success":
            return release.id
    return None


def shape_lock(info: LockInfo | None) -> dict[str, Any] | None:
    """The lock record without its token (as ``lock status --json``), or None when free."""
    if info is None:
        return None
    return {
        "holder": info.holder,
        "host": info.host,
        "pid": info.pid,
        "started_at": info.started_at,
        "command": info.command,
        "version": info.version,
        "release": info.release,
        "describe": info.describe(),
    }


def redacted(value: Any) -> Any:
    """``value`` with every string in it redacted (dicts, lists and tuples walked)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redacted(item) for item in value]
    return value


# -- the engine calls (what the CLI commands call) ------------------------------------------


def _remember_secrets(loaded: LoadedConfig, env: str) -> None:
    """Resolve the environment's secrets once so that redaction knows their values."""
    from stagecraft.deploy.pipeline import resolve_secrets

    # The providers register each value they resolve. A secret that cannot be resolved
    # here is not known to this process, so the page cannot show it from here either.
    with suppress(StagecraftError):
        resolve_secrets(loaded, env, None)


def _reader_options(name: str) -> SSHOptions:
    """SSH options whose control connections are the dashboard's own (``name``: which reader).

    SSH connections are shared per process and per control directory, and
    closing one ends every command on it. The dashboard's readers close theirs
    after each read while a rollback from the page may be running in the same
    process, so each reader gets a directory of its own and the rollback keeps
    the default one, as the CLI's.
    """
    from stagecraft.runtime.ssh import SSHOptions, default_control_dir

    return replace(SSHOptions.from_env(), control_dir=default_control_dir() / name)


def _read_status(loaded: LoadedConfig, env: str) -> EnvStatus:
    from stagecraft.deploy.state.layout import environment_hosts
    from stagecraft.ops.status import collect_status

    environment = loaded.environment(env)
    hosts = environment_hosts(environment, _reader_options("dash"))
    try:
        return collect_status(hosts, environment, project=loaded.config.project.name, env=env)
    finally:
        for host in hosts:
            host.close()


def _read_history(loaded: LoadedConfig, env: str) -> History:
    from stagecraft.deploy.state.layout import environment_hosts
    from stagecraft.deploy.state.ledger import history

    environment = loaded.environment(env)
    hosts = environment_hosts(environment, _reader_options("dash"))
    try:
        return history(hosts, loaded.config.project.name, env, parallel=environment.deploy.parallel)
    finally:
        for host in hosts:
            host.close()


def _read_lock(loaded: LoadedConfig, env: str) -> LockInfo | None:
    from stagecraft.deploy.state import lock
    from stagecraft.deploy.state.layout import environment_hosts

    hosts = environment_hosts(loaded.environment(env), _reader_options("dash"))
    try:
        return lock.status(hosts[0], loaded.config.project.name, env)
    finally:
        for host in hosts:
            host.close()


def _rollback(loaded: LoadedConfig, env: str, release: str, say: Progress) -> str:
    from stagecraft.deploy.pipeline import DeployOptions, rollback

    def progress(host: str, service: str | None, message: str) -> None:
        where = f"{host} {service}" if service else host
        say(f"[{where}] {message}")

    def hook_line(hook: str, line: str) -> None:
        say(f"[hook {hook}] {line}")

    options = DeployOptions(progress=progress, hook_output=hook_line)
    result = rollback(loaded, env, to=release, options=options)
    return result.release


def _follow(loaded: LoadedConfig, env: str, service: str, sink: LogSink) -> Callable[[], None]:
    from stagecraft.deploy.state.layout import environment_hosts
    from stagecraft.ops.logs import LogFollower, LogOptions, find_targets

    environment = loaded.environment(env)
    running = environment.hosts_running(service)
    options = _reader_options(f"l{next(_FOLLOWER_IDS)}")
    hosts = [h for h in environment_hosts(environment, options) if h.name in running]
    found = find_targets(
        hosts,
        project=loaded.config.project.name,
        env=env,
        service=service,
        parallel=environment.deploy.parallel,
    )
    for name, reason in found.unreachable.items():
        sink(name, "stderr", f"[stagecraft] logs not read: {reason}")
    follower = LogFollower(found.targets, LogOptions(tail=100), sink)
    thread = threading.Thread(target=follower.run, name=f"dashboard-logs-{service}", daemon=True)
    thread.start()

    def stop() -> None:
        follower.stop()
        thread.join(timeout=10)
        for host in hosts:
            host.close()

    return stop

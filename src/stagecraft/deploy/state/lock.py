"""The environment's deploy lock: one file on its primary host, created atomically.

The lock is ``/var/lib/stagecraft/apps/<project>/<env>/lock.json`` (ADR 0005).
Acquiring writes the record to a temp file and hard-links it into place
(``link(2)`` is atomic and fails when the lock exists), so when two clients race
exactly one wins and the lock is never seen without its content; the loser reads
the winner's record and raises :class:`~stagecraft.errors.LockHeld` naming the
holder, since when and the command (a lock released between the loser's link and
its read is linked again, so ``wait`` keeps waiting instead of failing). Each
acquisition carries a random token: :func:`release` removes the lock only while it
still holds our token; :func:`force_release` (``stagecraft lock release``) removes
whatever is there.

Example::

    info = LockInfo.create("shop", "staging", host="web-1", command="deploy",
                           version="3f2a9c1d0e4b", release="20261123T101500Z-3f2a9c1d0e4b")
    with held(primary, info, wait=30) as token:   # released on success, error and Ctrl-C
        ...                                        # deploy
    status(primary, "shop", "staging")             # -> LockInfo | None
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import shlex
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from stagecraft import log
from stagecraft.deploy.state.layout import lock_path
from stagecraft.errors import CommandFailed, HostError, LockHeld, StagecraftError
from stagecraft.runtime.ssh import SSHHost

logger = logging.getLogger(__name__)

_HELD = 3  # exit code of the acquire script when the lock exists
_NOT_OURS = 4  # exit code of the release script when the token does not match
_LINK_ATTEMPTS = 20  # links tried by one acquire script while the lock keeps vanishing


class LockLost(HostError):
    """Our lock could not be released: the host is unreachable, or the lock is no longer ours."""


@dataclass(frozen=True)
class LockInfo:
    """What the lock file says: who holds it, since when, for what."""

    project: str
    env: str
    holder: str
    host: str
    pid: int
    started_at: str
    command: str
    version: str | None
    release: str | None
    token: str

    @classmethod
    def create(
        cls,
        project: str,
        env: str,
        *,
        host: str,
        command: str,
        version: str | None = None,
        release: str | None = None,
    ) -> LockInfo:
        """A new record for this process: ``user@machine``, pid, now, a fresh token."""
        return cls(
            project=project,
            env=env,
            holder=local_identity(),
            host=host,
            pid=os.getpid(),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            command=command,
            version=version,
            release=release,
            token=uuid.uuid4().hex,
        )

    def to_json(self) -> str:
        """One line of JSON (keys sorted: the token check greps for it)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LockInfo:
        """Parse a lock file; raises ValueError when it is not a lock record."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return cls(
            project=str(data.get("project", "")),
            env=str(data.get("env", "")),
            holder=str(data.get("holder", "unknown")),
            host=str(data.get("host", "")),
            pid=int(data.get("pid", 0)),
            started_at=str(data.get("started_at", "")),
            command=str(data.get("command", "")),
            version=_opt(data.get("version")),
            release=_opt(data.get("release")),
            token=str(data.get("token", "")),
        )

    def describe(self) -> str:
        """``alice@laptop since 2026-11-23T10:15:00+00:00 (deploy 3f2a9c1d0e4b, pid 4242)``."""
        what = " ".join(part for part in (self.command, self.version) if part)
        return (
            f"{self.holder} since {self.started_at} ({what or 'unknown command'}, pid {self.pid})"
        )


@dataclass(frozen=True)
class LockToken:
    """Proof that we hold the lock: where it is and our token."""

    host: str
    path: str
    info: LockInfo

    @property
    def value(self) -> str:
        return self.info.token


def local_identity() -> str:
    """``user@machine`` of this process."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def acquire(host: SSHHost, info: LockInfo, *, wait: float = 0, poll: float = 1.0) -> LockToken:
    """Take the lock of ``info.project``/``info.env`` on ``host``, the environment's primary.

    With ``wait`` > 0, poll every ``poll`` seconds until the lock is free or
    ``wait`` seconds have passed. Raises :class:`LockHeld` naming the holder.
    """
    path = lock_path(info.project, info.env)
    deadline = time.monotonic() + wait
    while True:
        current = _try_create(host, path, info)
        if current is None:
            log.event(logger, logging.DEBUG, f"lock taken: {path}", host=host.name, phase="lock")
            return LockToken(host.name, path, info)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _held_error(host.name, info, current, waited=wait)
        time.sleep(min(poll, remaining))


def release(host: SSHHost, token: LockToken) -> None:
    """Remove the lock if it still carries our token; raises :class:`LockLost` otherwise."""
    script = (
        f'f={shlex.quote(token.path)}; [ -e "$f" ] || exit {_NOT_OURS}; '
        f'grep -qF {shlex.quote(_token_field(token.value))} "$f" || exit {_NOT_OURS}; '
        'rm -f "$f"'
    )
    result = host.run(["sh", "-c", script], check=False)
    if result.returncode == _NOT_OURS:
        raise LockLost(
            host.name,
            f"the deploy lock {token.path} is no longer ours (someone released it)",
            hint="check `stagecraft lock status` before deploying again",
        )
    if result.returncode != 0:
        raise CommandFailed(
            [f"release lock {token.path}"], result.returncode, result.output, host=host.name
        )
    log.event(logger, logging.DEBUG, f"lock released: {token.path}", host=host.name, phase="lock")


def status(host: SSHHost, project: str, env: str) -> LockInfo | None:
    """The current lock of the environment, or None when it is free."""
    data = host.read_file(lock_path(project, env))
    if data is None:
        return None
    return _parse(data.decode(errors="replace"), project, env)


def force_release(host: SSHHost, project: str, env: str) -> LockInfo | None:
    """Remove the lock whoever holds it; return what it said (None when it was free)."""
    path = lock_path(project, env)
    script = f'f={shlex.quote(path)}; [ -e "$f" ] || exit {_NOT_OURS}; cat "$f"; rm -f "$f"'
    result = host.run(["sh", "-c", script], check=False)
    if result.returncode == _NOT_OURS:
        return None
    if result.returncode != 0:
        raise CommandFailed(
            [f"remove lock {path}"], result.returncode, result.output, host=host.name
        )
    return _parse(result.stdout, project, env)


@contextmanager
def held(
    host: SSHHost, info: LockInfo, *, wait: float = 0, poll: float = 1.0
) -> Iterator[LockToken]:
    """Hold the lock for the ``with`` body; release it on success, error and Ctrl-C.

    If releasing fails after the body succeeded, :class:`LockLost` is raised. If
    the body failed, its error propagates unchanged, with a note (and an error
    log event) saying the lock is still held and how to break it.
    """
    token = acquire(host, info, wait=wait, poll=poll)
    try:
        yield token
    except BaseException as exc:
        problem = _release_quietly(host, token)
        if problem is not None:
            exc.add_note(problem)
        raise
    release(host, token)


def _release_quietly(host: SSHHost, token: LockToken) -> str | None:
    """Release after a failure; return a message instead of raising when that fails."""
    try:
        release(host, token)
    except StagecraftError as exc:
        message = (
            f"could not release the deploy lock on {host.name}: {exc.message}; "
            f"break it with `stagecraft lock release --env {token.info.env}`"
        )
        log.event(logger, logging.ERROR, message, host=host.name, phase="lock")
        return message
    return None


def _try_create(host: SSHHost, path: str, info: LockInfo) -> LockInfo | None:
    """Create the lock file exclusively; None on success, else the current holder's record."""
    quoted = shlex.quote(path)
    # The record is written to a temp file first and then hard-linked into place:
    # link(2) is atomic and fails when the lock exists, and the lock is never seen
    # without its content (an O_EXCL create followed by a write was: a racing
    # loser could read an empty file).
    # A lock that vanished between the failed ln and the cat was released by its
    # holder in between: link again (a bounded number of times; an ln that fails
    # while no lock exists is a real error, shown with ln's own message).
    script = (
        f'f={quoted}; d="$(dirname "$f")"; mkdir -p "$d" || exit 1; '
        't="$(mktemp "$d/.lock.XXXXXX")" || exit 1; cat > "$t" || { rm -f "$t"; exit 1; }; '
        f"i=0; while [ $i -lt {_LINK_ATTEMPTS} ]; do "
        'if e="$(ln "$t" "$f" 2>&1)"; then rm -f "$t"; exit 0; fi; '
        f'if cat "$f" 2>/dev/null; then rm -f "$t"; exit {_HELD}; fi; '
        "i=$((i + 1)); done; "
        'rm -f "$t"; printf "%s\n" "$e" >&2; exit 1'
    )
    result = host.run(["sh", "-c", script], input=info.to_json() + "\n", check=False)
    if result.returncode == 0:
        return None
    if result.returncode == _HELD:
        return _parse(result.stdout, info.project, info.env)
    raise CommandFailed([f"create lock {path}"], result.returncode, result.output, host=host.name)


def _parse(text: str, project: str, env: str) -> LockInfo:
    """A lock record; an empty or damaged file (a writer cut off) still counts as held."""
    try:
        return LockInfo.from_json(text)
    except (ValueError, TypeError):
        return LockInfo(
            project, env, "unknown (unreadable lock file)", "", 0, "unknown", "", None, None, ""
        )


def _held_error(host: str, wanted: LockInfo, current: LockInfo, *, waited: float) -> LockHeld:
    waited_text = f" (waited {waited:g}s)" if waited > 0 else ""
    return LockHeld(
        f"the deploy lock of {wanted.project}/{wanted.env} on {host} is held by "
        f"{current.describe()}{waited_text}",
        hint="wait for it to finish (--lock-wait SECONDS), or if that run is dead, "
        f"`stagecraft lock release --env {wanted.env}`",
    )


def _token_field(token: str) -> str:
    return f'"token": "{token}"'


def _opt(value: object) -> str | None:
    return None if value is None else str(value)

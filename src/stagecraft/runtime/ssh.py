"""Talk to remote hosts with the system OpenSSH client (the host gateway).

Every remote command goes through :class:`SSHHost`, which runs ``ssh`` through
:func:`stagecraft.runtime.process.run`. Stagecraft adds only what it needs and
leaves the rest to the user's ssh setup (``~/.ssh/config``, the agent,
ProxyJump, known_hosts):

- ``BatchMode yes`` (never prompt) and ``StrictHostKeyChecking yes`` (or
  ``accept-new`` when strict checking is turned off: a *changed* key is always
  refused);
- connection reuse: ``ControlMaster auto`` with ``ControlPersist 60s`` and a
  ``ControlPath`` in a short per-user directory (``/tmp/stagecraft-<uid>``), one
  socket per target, option set and process, so socket paths stay far below 104
  bytes and closing one process's connection never cuts another's;
- ``ConnectTimeout`` and ``ServerAlive*`` so a lost host fails instead of hanging.

ssh's own failures (exit 255) become :class:`~stagecraft.errors.HostKeyMismatch`,
:class:`~stagecraft.errors.HostKeyUnknown`, :class:`~stagecraft.errors.HostUnreachable`
or :class:`~stagecraft.errors.HostError` (authentication); a remote command's
non-zero exit is :class:`~stagecraft.errors.CommandFailed` naming the host.
Data (file contents, secrets) always travels on stdin, never on a command line.

Example::

    host = SSHHost(SSHTarget("web-1", "203.0.113.10", user="deploy"))
    host.run(["mkdir", "-p", "/srv/shop"])
    host.write_file("/srv/shop/.env", b"TOKEN=...\\n")        # 0600, atomic
    print(host.docker("ps", "--format", "{{.Names}}").stdout)
    with host.forward("127.0.0.1", 5432) as port:            # ssh -L
        ...  # connect to 127.0.0.1:<port>
    host.close()
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import hashlib
import logging
import math
import os
import re
import shlex
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from stagecraft import log
from stagecraft.errors import (
    CommandFailed,
    CommandTimeout,
    HostError,
    HostKeyMismatch,
    HostKeyUnknown,
    HostUnreachable,
    PrerequisiteMissing,
    StagecraftError,
)
from stagecraft.runtime import process
from stagecraft.runtime.process import Completed, LineCallback

logger = logging.getLogger(__name__)

CONFIG_ENV = "STAGECRAFT_SSH_CONFIG"
CONTROL_PERSIST = "60s"


@dataclass(frozen=True)
class _Warming:
    """A background connect (:meth:`SSHHost.warm_up`) and how to stop it."""

    thread: threading.Thread
    scope: process.CancelScope
    host: SSHHost

    def cancel(self) -> None:
        if self.thread.is_alive():
            self.scope.cancel(grace=0.5)
        self.thread.join()


_WARM_LOCK = threading.Lock()
_WARMING: dict[Path, _Warming] = {}
"""Background connects by control path (one per target and options in this process)."""


def stop_warm_ups() -> None:
    """Stop every background connect and the connections they opened (a command gave up)."""
    with _WARM_LOCK:
        pending = list(_WARMING.values())
        _WARMING.clear()
    for warming in pending:
        warming.cancel()
        warming.host.close()


SSH_HINT = "install the OpenSSH client (Debian/Ubuntu: `apt-get install openssh-client`)"
_MISSING_MARK = "stagecraft: no such file"
_MAX_CONTROL_PATH = 86  # ssh appends ".XXXXXXXXXXXXXXXX" while binding; sun_path holds 104


@dataclass(frozen=True)
class SSHTarget:
    """One host to reach: a display ``name`` and how to connect (address, user, port)."""

    name: str
    address: str
    user: str | None = None
    port: int | None = None

    @property
    def destination(self) -> str:
        """``user@address`` (or the bare address) as ssh expects it."""
        return f"{self.user}@{self.address}" if self.user else self.address


@dataclass(frozen=True)
class SSHOptions:
    """How to run ssh. Unset fields leave ssh's own configuration in charge."""

    config_file: Path | None = None
    known_hosts: Path | None = None
    identity: Path | None = None
    strict_host_keys: bool = True
    connect_timeout: float = 10.0
    control_dir: Path | None = None

    @classmethod
    def from_env(cls) -> SSHOptions:
        """Options from the environment: ``$STAGECRAFT_SSH_CONFIG`` names an ``ssh -F`` file."""
        config = os.environ.get(CONFIG_ENV)
        return cls(config_file=Path(config) if config else None)


@dataclass(frozen=True)
class HostProbe:
    """What :meth:`SSHHost.probe` found on a host."""

    host: str
    arch: str
    docker_version: str | None
    compose_version: str | None
    duration: float


class SSHHost:
    """A remote host reached over SSH: run commands, docker/compose, files, tunnels.

    See the module docstring for an example. Instances are cheap and thread-safe:
    parallel calls share one control connection.
    """

    def __init__(self, target: SSHTarget, options: SSHOptions | None = None) -> None:
        self.target = target
        self.options = options if options is not None else SSHOptions.from_env()

    def warm_up(self) -> None:
        """Open the shared connection in the background while the caller does other work.

        The next command to this target (from any :class:`SSHHost` with the same
        options, in this process) waits for it instead of opening a second one.
        Failures are not reported here: that command meets them and says why.
        :meth:`cancel_warm_up` stops a connect still under way.
        """
        path = self.control_path()
        with _WARM_LOCK:
            if path in _WARMING or path.exists():
                return
            with process.cancel_scope() as scope:
                context = contextvars.copy_context()  # runs the connect inside ``scope``

            def connect() -> None:
                with contextlib.suppress(Exception):
                    argv = self.ssh_argv("true")
                    process.run(argv, check=False, timeout=self.options.connect_timeout + 5)

            thread = threading.Thread(
                target=context.run, args=(connect,), name=f"ssh-{self.name}", daemon=True
            )
            _WARMING[path] = _Warming(thread, scope, self)
            thread.start()

    def cancel_warm_up(self) -> None:
        """Stop a background connect (:meth:`warm_up`) that has not finished, and forget it."""
        with _WARM_LOCK:
            warming = _WARMING.pop(self.control_path(), None)
        if warming is not None:
            warming.cancel()

    def _wait_warm(self) -> None:
        with _WARM_LOCK:
            warming = _WARMING.get(self.control_path())
        if warming is not None and warming.thread is not threading.current_thread():
            warming.thread.join()
            with _WARM_LOCK:
                if _WARMING.get(self.control_path()) is warming:
                    del _WARMING[self.control_path()]

    @property
    def name(self) -> str:
        return self.target.name

    def __repr__(self) -> str:
        return f"SSHHost({self.target.name!r}, {self.target.destination!r})"

    # -- commands ---------------------------------------------------------------

    def run(
        self,
        command: str | Sequence[str],
        *,
        input: str | bytes | IO[bytes] | None = None,
        timeout: float | None = None,
        check: bool = True,
        on_line: LineCallback | None = None,
    ) -> Completed:
        """Run ``command`` on the host (a Sequence is shell-quoted) and return its result.

        Raises a :class:`HostError` subclass when ssh itself fails, and
        :class:`CommandFailed` (with ``host``) for a non-zero exit when ``check``.
        """
        remote = command_line(command)
        self._wait_warm()
        log.event(logger, logging.DEBUG, f"ssh $ {remote}", host=self.name, phase="ssh")
        rewind = _rewinder(input)
        for attempt in (1, 2):
            argv = self.ssh_argv(remote, multiplex=attempt == 1)
            try:
                result = process.run(
                    argv, input=input, timeout=timeout, check=False, on_line=on_line, hint=SSH_HINT
                )
            except CommandTimeout:
                raise CommandTimeout(
                    f"on {self.name}: `{remote[:120]}` did not finish within {timeout:g}s"
                ) from None
            if (
                attempt == 1
                and result.returncode == 255
                and _is_mux_failure(result.stderr)
                and rewind is not None
            ):
                # A master that died a moment ago: retry once on a fresh connection.
                rewind()
                continue
            break
        if result.returncode == 255:
            error = classify_ssh_failure(self.target, result.stderr) or self.lost_connection(remote)
            if error is not None:
                raise error
        if check and result.returncode != 0:
            raise CommandFailed([remote], result.returncode, result.output, host=self.name)
        return result

    def lost_connection(self, remote: str) -> HostError | None:
        """After an unexplained exit 255: the host's error if it no longer answers, else None.

        A connection cut mid-command (the host died, sshd was killed) ends ssh with
        255 and often no message at all, exactly like a remote command exiting 255;
        a fresh connection tells them apart.
        """
        argv = self.ssh_argv("true", multiplex=False)
        wait = self.options.connect_timeout + 5
        try:
            check = process.run(argv, timeout=wait, check=False)
        except CommandTimeout:
            reason = f"it did not answer within {wait:g}s"
        else:
            if check.returncode == 0:
                return None  # the host answers: 255 was the remote command's own exit code
            cause = classify_ssh_failure(self.target, check.stderr)
            reason = cause.message if cause is not None else "it no longer answers"
        return HostUnreachable(
            self.name,
            f"lost the connection to {self.target.address} during `{remote[:80]}`: {reason}",
            hint="check that the host is up and its sshd runs, then run the command again",
        )

    def docker(
        self,
        *args: str,
        input: str | bytes | IO[bytes] | None = None,
        timeout: float | None = None,
        check: bool = True,
        on_line: LineCallback | None = None,
    ) -> Completed:
        """Run ``docker ARGS...`` on the host."""
        return self.run(
            ["docker", *args], input=input, timeout=timeout, check=check, on_line=on_line
        )

    def compose(
        self,
        *args: str,
        project_dir: str | None = None,
        project_name: str | None = None,
        files: Sequence[str] = (),
        input: str | bytes | IO[bytes] | None = None,
        timeout: float | None = None,
        check: bool = True,
        on_line: LineCallback | None = None,
    ) -> Completed:
        """Run ``docker compose ...`` on the host, in ``project_dir`` when given."""
        return self.run(
            compose_command(args, project_dir=project_dir, project_name=project_name, files=files),
            input=input,
            timeout=timeout,
            check=check,
            on_line=on_line,
        )

    # -- files ------------------------------------------------------------------

    def write_file(self, remote: str, data: bytes, *, mode: int = 0o600) -> None:
        """Atomically replace ``remote`` with ``data`` (parent dirs created).

        The temporary file gets its final ``mode`` before any byte is written,
        and the data travels on stdin, so secrets never show up in a process list.
        """
        self.run(["sh", "-c", write_script(remote, mode)], input=data)

    def upload(self, local: Path, remote: str, *, mode: int | None = None) -> None:
        """Copy the local file ``local`` to ``remote`` (atomically; streamed, not buffered)."""
        final_mode = mode if mode is not None else stat.S_IMODE(local.stat().st_mode)
        with local.open("rb") as fh:
            self.run(["sh", "-c", write_script(remote, final_mode)], input=fh)

    def read_file(self, remote: str) -> bytes | None:
        """The bytes of ``remote``, or None when it does not exist."""
        quoted = shlex.quote(remote)
        script = f"[ -e {quoted} ] || {{ echo '{_MISSING_MARK}' >&2; exit 3; }}; base64 < {quoted}"
        result = self.run(["sh", "-c", script], check=False)
        if result.returncode == 3 and _MISSING_MARK in result.stderr:
            return None
        if result.returncode != 0:
            raise CommandFailed(
                [f"read {remote}"], result.returncode, result.output, host=self.name
            )
        return base64.b64decode("".join(result.stdout.split()))

    # -- tunnels, probes, lifecycle -----------------------------------------------

    @contextmanager
    def forward(self, remote_host: str, remote_port: int, local_port: int = 0) -> Iterator[int]:
        """Forward a local port to ``remote_host:remote_port`` as seen from the host (ssh -L).

        Yields the bound local port on 127.0.0.1 (a free one when ``local_port`` is
        0) once ssh listens on it. When the shared control connection runs, the
        forward is added to it (``ssh -O forward``: no new handshake, a few
        milliseconds) and cancelled on exit; otherwise a dedicated ``ssh -N``
        carries it and closes on exit::

            with host.forward("127.0.0.1", 5432) as port:
                psycopg.connect(host="127.0.0.1", port=port, ...)
        """
        self._wait_warm()
        shared = self._forward_on_master(remote_host, remote_port, local_port)
        if shared is not None:
            port, spec = shared
            try:
                yield port
            finally:
                self._master_control("cancel", spec)
            return
        tunnel, port = self._open_tunnel(remote_host, remote_port, local_port)
        try:
            yield port
        finally:
            tunnel.stop(grace=2.0)

    def _forward_on_master(
        self, remote_host: str, remote_port: int, local_port: int
    ) -> tuple[int, str] | None:
        """Add ``-L`` to the running control master: ``(port, spec)``, or None when it cannot."""
        path = self.control_path()
        if len(str(path)) > _MAX_CONTROL_PATH or not path.exists():
            return None
        target = f"[{remote_host}]" if ":" in remote_host else remote_host
        for _ in range(3):
            port = local_port or _free_port()
            spec = f"127.0.0.1:{port}:{target}:{remote_port}"
            if self._master_control("forward", spec):
                log.event(
                    logger,
                    logging.DEBUG,
                    f"forwarding 127.0.0.1:{port} -> {target}:{remote_port} (shared connection)",
                    host=self.name,
                    phase="ssh",
                )
                return port, spec
            if local_port:
                return None
        return None

    def _master_control(self, command: str, spec: str) -> bool:
        """``ssh -O <command> -L <spec>`` on the control master; whether it succeeded."""
        argv = [*self._base_argv(multiplex=True), "-O", command, "-L", spec]
        argv += ["--", self.target.destination]
        try:
            result = process.run(
                argv, check=False, timeout=self.options.connect_timeout + 5, hint=SSH_HINT
            )
        except StagecraftError:
            return False
        return result.returncode == 0

    def probe(self) -> HostProbe:
        """Connect and report the host's architecture, Docker and Compose versions."""
        script = (
            'echo "arch=$(uname -m)"; '
            "echo \"docker=$(docker version --format '{{.Server.Version}}' 2>/dev/null)\"; "
            'echo "compose=$(docker compose version --short 2>/dev/null)"'
        )
        result = self.run(["sh", "-c", script])
        found = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
        return HostProbe(
            host=self.name,
            arch=found.get("arch", "").strip(),
            docker_version=found.get("docker", "").strip() or None,
            compose_version=found.get("compose", "").strip().lstrip("v") or None,
            duration=result.duration,
        )

    def close(self) -> None:
        """Stop the shared control connection, if one is running (``ssh -O exit``)."""
        self._wait_warm()
        path = self.control_path()
        if not path.exists():
            return
        argv = [*self._base_argv(multiplex=True), "-O", "exit", "--", self.target.address]
        process.run(argv, check=False, timeout=self.options.connect_timeout + 5, hint=SSH_HINT)

    # -- argv construction (pure; unit-tested) -------------------------------------

    def ssh_argv(self, remote: str | None, *, multiplex: bool = True) -> list[str]:
        """The full ``ssh`` argv that runs ``remote`` (a shell command line) on the host.

        Public so callers can build pipelines, e.g. ``docker save IMG | <argv>``.
        """
        argv = [*self._base_argv(multiplex=multiplex), "--", self.target.destination]
        if remote is not None:
            argv.append(remote)
        return argv

    def control_path(self) -> Path:
        """The ControlPath socket for this target, option set and process (short, per user).

        Per process, so that :meth:`close` (``ssh -O exit``) in one ``stagecraft``
        process never cuts the commands of another one running at the same time
        (two deploys racing for the lock, a ``logs -f`` beside a deploy).
        """
        key = "\0".join(
            str(part)
            for part in (
                os.getpid(),
                self.target.address,
                self.target.user,
                self.target.port,
                self.options.config_file,
                self.options.known_hosts,
                self.options.identity,
                self.options.strict_host_keys,
            )
        )
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return (self.options.control_dir or default_control_dir()) / digest

    def _base_argv(self, *, multiplex: bool) -> list[str]:
        opts = self.options
        argv = ["ssh"]
        if opts.config_file is not None:
            argv += ["-F", str(opts.config_file)]
        argv += _option("BatchMode", "yes")
        argv += _option("StrictHostKeyChecking", "yes" if opts.strict_host_keys else "accept-new")
        argv += _option("ConnectTimeout", str(max(1, math.ceil(opts.connect_timeout))))
        argv += _option("ServerAliveInterval", "15") + _option("ServerAliveCountMax", "4")
        if opts.known_hosts is not None:
            argv += _option("UserKnownHostsFile", _ssh_path(opts.known_hosts))
        if multiplex:
            path = self.control_path()
            if len(str(path)) <= _MAX_CONTROL_PATH:
                _ensure_control_dir(path.parent)
                argv += _option("ControlMaster", "auto") + _option("ControlPath", _ssh_path(path))
                argv += _option("ControlPersist", CONTROL_PERSIST)
            else:
                argv += _option("ControlPath", "none")
        else:
            argv += _option("ControlMaster", "no") + _option("ControlPath", "none")
        if opts.identity is not None:
            argv += ["-i", str(opts.identity)]
        if self.target.port is not None:
            argv += ["-p", str(self.target.port)]
        return argv

    def _open_tunnel(
        self, remote_host: str, remote_port: int, local_port: int
    ) -> tuple[process.Spawned, int]:
        """Start ``ssh -N -L`` and wait until it listens; retry when a free port got taken."""
        target = f"[{remote_host}]" if ":" in remote_host else remote_host
        for _ in range(5):
            port = local_port or _free_port()
            argv = [
                *self._base_argv(multiplex=False),
                "-v",  # "Local forwarding listening on ..." tells us the tunnel is up
                "-N",
                *_option("ExitOnForwardFailure", "yes"),
                "-L",
                f"127.0.0.1:{port}:{target}:{remote_port}",
                "--",
                self.target.destination,
            ]
            tunnel = process.spawn(argv, hint=SSH_HINT)
            listening = f"Local forwarding listening on 127.0.0.1 port {port}."
            deadline = time.monotonic() + self.options.connect_timeout + 10
            while time.monotonic() < deadline:
                output = tunnel.output()
                if listening in output:
                    log.event(
                        logger,
                        logging.DEBUG,
                        f"forwarding 127.0.0.1:{port} -> {target}:{remote_port}",
                        host=self.name,
                        phase="ssh",
                    )
                    return tunnel, port
                if not tunnel.alive() and tunnel.wait(0.2) is not None:
                    break
                time.sleep(0.02)
            tunnel.stop(grace=1.0)
            output = tunnel.output()
            if "Address already in use" in output and not local_port:
                continue
            raise classify_ssh_failure(self.target, output) or HostError(
                self.name,
                f"could not forward 127.0.0.1:{port} to {target}:{remote_port}: "
                f"{_last_ssh_line(output) or 'ssh gave up'}",
                hint="check that the local port is free and the host allows TCP forwarding "
                "(AllowTcpForwarding in its sshd_config)",
            )
        raise HostError(self.name, "could not find a free local port for the tunnel")


def command_line(command: str | Sequence[str]) -> str:
    """The remote shell command line: a string as is, a Sequence shell-quoted."""
    if isinstance(command, str):
        return command
    return shlex.join(str(part) for part in command)


def compose_command(
    args: Sequence[str],
    *,
    project_dir: str | None = None,
    project_name: str | None = None,
    files: Sequence[str] = (),
) -> str:
    """The remote command line for ``docker compose`` (``cd`` first when ``project_dir``)."""
    argv = ["docker", "compose"]
    if project_name:
        argv += ["-p", project_name]
    for file in files:
        argv += ["-f", file]
    line = shlex.join([*argv, *args])
    return f"cd {shlex.quote(project_dir)} && {line}" if project_dir else line


def write_script(remote: str, mode: int) -> str:
    """POSIX sh that writes stdin to ``remote`` atomically (tmp file with ``mode`` + mv)."""
    path = shlex.quote(remote)
    while_writing = mode | 0o200  # the owner must be able to write the temporary file
    return (
        "set -e; "
        f'f={path}; d=$(dirname "$f"); mkdir -p "$d"; '
        't=$(mktemp "$d/.stagecraft-tmp.XXXXXXXX"); '
        "trap 'rm -f \"$t\"' EXIT; "
        f'chmod {while_writing:o} "$t"; cat > "$t"; chmod {mode:o} "$t"; '
        'mv -f "$t" "$f"; trap - EXIT'
    )


def classify_ssh_failure(target: SSHTarget, stderr: str) -> HostError | None:
    """Map ssh's stderr after exit 255 to a host error; None when it is the remote command's."""
    name, address = target.name, target.address
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr or re.search(
        r"Host key for \S+ has changed", stderr
    ):
        return HostKeyMismatch(
            name,
            f"the host key of {address} does not match known_hosts "
            "(the host was reinstalled, or someone is intercepting the connection)",
            hint="verify the host's new key fingerprint out of band (console, provider), "
            f"then remove the old entry with `ssh-keygen -R {address}` and connect again",
        )
    if "Host key verification failed" in stderr or re.search(
        r"No \S+ host key is known for", stderr
    ):
        return HostKeyUnknown(
            name,
            f"the host key of {address} is not in known_hosts and strict checking is on",
            hint=f"run `ssh-keyscan {address}`, verify the fingerprint out of band, and add it "
            f"to ~/.ssh/known_hosts (or connect once with `ssh {target.destination}`)",
        )
    for line in stderr.splitlines():
        reason = _unreachable_reason(line)
        if reason:
            port = target.port or 22
            return HostUnreachable(
                name,
                f"cannot connect to {address}:{port}: {reason}",
                hint="check that the host is up, the address and port are right, "
                "and a firewall or VPN does not block SSH",
            )
    if "Permission denied (" in stderr or "Too many authentication failures" in stderr:
        return HostError(
            name,
            f"SSH authentication failed for {target.destination}",
            hint="check that your key is loaded (`ssh-add -l`) and its public key is in the "
            "host's ~/.ssh/authorized_keys, and that `user:` is right for this host",
        )
    return None


_UNREACHABLE = (
    ("kex_exchange_identification", "the connection was closed before login"),
    ("Connection refused", "connection refused"),
    ("Connection timed out", "connection timed out"),
    ("Operation timed out", "connection timed out"),
    ("No route to host", "no route to host"),
    ("Network is unreachable", "network is unreachable"),
    ("Could not resolve hostname", "could not resolve the host name"),
    ("Name or service not known", "could not resolve the host name"),
    ("Connection closed by", "the connection was closed before login"),
    ("Connection reset by", "the connection was reset"),
)


def _unreachable_reason(line: str) -> str | None:
    if not line.startswith(("ssh:", "kex_exchange_identification", "Connection ")):
        return None
    for needle, reason in _UNREACHABLE:
        if needle in line:
            return reason
    return None


def _rewinder(data: str | bytes | IO[bytes] | None) -> Callable[[], None] | None:
    """How to feed ``data`` again for a retry (None when it cannot be replayed)."""
    if data is None or isinstance(data, str | bytes):
        return lambda: None
    if not data.seekable():
        return None
    start = data.tell()

    def rewind() -> None:
        data.seek(start)

    return rewind


def _is_mux_failure(stderr: str) -> bool:
    return "mux_client" in stderr or "Control socket connect" in stderr


def _last_ssh_line(output: str) -> str:
    lines = [ln for ln in output.splitlines() if ln.strip() and not ln.startswith("debug")]
    return lines[-1].strip() if lines else ""


def _option(key: str, value: str) -> list[str]:
    return ["-o", f"{key}={value}"]


def _ssh_path(path: Path) -> str:
    """A path for an ssh option value: ``%`` escaped (tokens), quoted when it has spaces."""
    text = str(path).replace("%", "%%")
    return f'"{text}"' if any(ch.isspace() for ch in text) else text


def default_control_dir() -> Path:
    """The per-user directory for control sockets: short on every OS (not $TMPDIR)."""
    return Path("/tmp") / f"stagecraft-{os.getuid()}"


def _ensure_control_dir(path: Path) -> None:
    """Create ``path`` 0700, or check that an existing one is ours and private."""
    try:
        path.mkdir(mode=0o700, exist_ok=False)
        return
    except FileExistsError:
        pass
    except OSError as exc:
        raise PrerequisiteMissing(
            f"cannot create the SSH control directory {path}: {exc.strerror}",
            hint="set a writable `control_dir` in the SSH options",
        ) from None
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise StagecraftError(
            f"the SSH control directory {path} is not a directory owned by you",
            hint=f"remove {path} (someone else may have created it) and retry",
        )
    if stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(0o700)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port

"""Interactive access to hosts and containers: the engine of ``stagecraft exec`` and ``ssh``.

The engine only *finds* things and *builds* the ssh argv; the CLI hands that argv
to the system ssh (``os.execvp``), so terminals, signals and the remote exit code
behave exactly as with ssh itself. The argv carries the same options as every
other Stagecraft connection (:meth:`SSHHost.ssh_argv`), without connection
sharing, so an interactive session leaves no background master behind.

Example::

    from stagecraft.ops.shell import exec_argv, find_exec_target

    target = find_exec_target(hosts, project="shop", env="production", service="web")
    argv = exec_argv(target.host, target.container, ["sh", "-c", "env"], tty=False)
    os.execvp(argv[0], argv)
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from stagecraft.config.loader import LoadedConfig
from stagecraft.config.models import EnvironmentConfig
from stagecraft.deploy.state.containers import read_host_state
from stagecraft.deploy.state.layout import environment_hosts
from stagecraft.errors import HostError, UsageError
from stagecraft.runtime.ssh import SSHHost


@dataclass(frozen=True)
class ExecTarget:
    """The running container a command will run in, and its host."""

    host: SSHHost
    container: str
    name: str


def check_host(environment: EnvironmentConfig, env: str, host: str) -> None:
    """Raise a :class:`UsageError` naming the known hosts when ``host`` is not one of ``env``."""
    if host not in environment.hosts:
        known = ", ".join(environment.hosts)
        raise UsageError(
            f"{env}: no host {host!r}",
            hint=f"hosts of {env}: {known}",
        )


def service_hosts(loaded: LoadedConfig, env: str, service: str, host: str | None) -> list[SSHHost]:
    """The hosts of ``env`` running ``service`` (or just ``host``), both names checked."""
    environment = loaded.environment(env)
    if loaded.compose is not None:
        check_service(service, list(loaded.compose.services), env)
    if host is not None:
        check_host(environment, env, host)
    names = [host] if host else environment.hosts_running(service)
    return [h for h in environment_hosts(environment) if h.name in names]


def check_service(service: str, known: Sequence[str], env: str) -> None:
    """Raise a :class:`UsageError` naming the known services when ``service`` is not one."""
    if service not in known:
        raise UsageError(
            f"{env}: no service {service!r} in the compose file",
            hint=f"services: {', '.join(sorted(known))}",
        )


def find_exec_target(
    hosts: Sequence[SSHHost], *, project: str, env: str, service: str
) -> ExecTarget:
    """The newest running container of ``service`` on the first of ``hosts`` that runs one.

    Hosts are tried in order; an unreachable host is skipped when a later one
    runs the service, else its error is raised.
    """
    errors: list[HostError] = []
    for host in hosts:
        try:
            state = read_host_state(host, project, env)
        except HostError as exc:
            errors.append(exc)
            continue
        running = state.running(service)
        if running:
            return ExecTarget(host, running[0].id, running[0].name)
    if errors:
        raise errors[0]
    where = ", ".join(h.name for h in hosts)
    raise UsageError(
        f"{env}: no running container of {service!r} on {where}",
        hint=f"see what runs where with `stagecraft status --env {env}`",
    )


def exec_argv(host: SSHHost, container: str, command: Sequence[str], *, tty: bool) -> list[str]:
    """``ssh [-t] HOST docker exec -i[t] CONTAINER CMD...`` (pure apart from the argv)."""
    if not command:
        raise UsageError("no command to run", hint="put it after --, e.g. `-- sh -c 'env'`")
    flags = ["-it"] if tty else ["-i"]
    remote = shlex.join(["docker", "exec", *flags, container, *command])
    return with_tty(host.ssh_argv(remote, multiplex=False), tty)


def ssh_argv(host: SSHHost, command: Sequence[str], *, tty: bool) -> list[str]:
    """``ssh HOST`` for a login shell, or ``ssh HOST CMD...`` (words joined like ssh does)."""
    if not command:
        return host.ssh_argv(None, multiplex=False)
    return with_tty(host.ssh_argv(" ".join(command), multiplex=False), tty)


def with_tty(argv: list[str], tty: bool) -> list[str]:
    """``argv`` with ``-t`` (force a remote terminal) before its ``--`` when ``tty``."""
    if not tty:
        return argv
    cut = argv.index("--")
    return [*argv[:cut], "-t", *argv[cut:]]

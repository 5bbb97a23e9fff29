"""Where host state lives (ADR 0005 section 2) and the SSH hosts of an environment."""

from __future__ import annotations

import posixpath
from dataclasses import replace
from pathlib import Path

from stagecraft.config.models import EnvironmentConfig
from stagecraft.errors import UsageError
from stagecraft.runtime.ssh import SSHHost, SSHOptions, SSHTarget

STATE_ROOT = "/var/lib/stagecraft"


def app_dir(project: str, env: str) -> str:
    """``/var/lib/stagecraft/apps/<project>/<env>``: one environment's state on a host."""
    return posixpath.join(STATE_ROOT, "apps", project, env)


def lock_path(project: str, env: str) -> str:
    """The deploy lock file (on the environment's primary host only)."""
    return posixpath.join(app_dir(project, env), "lock.json")


def ledger_path(project: str, env: str) -> str:
    """The append-only release ledger of one host."""
    return posixpath.join(app_dir(project, env), "ledger.jsonl")


def digest_key_path(project: str, env: str) -> str:
    """The key of the environment's secret digests (0600, on its primary host only)."""
    return posixpath.join(app_dir(project, env), "secret-digest.key")


def environment_hosts(
    environment: EnvironmentConfig, options: SSHOptions | None = None
) -> list[SSHHost]:
    """An :class:`SSHHost` per host of ``environment``, in config order (primary first)."""
    opts = ssh_options(environment, options)
    return [SSHHost(host_target(environment, name), opts) for name in environment.hosts]


def warm_up_hosts(environment: EnvironmentConfig, options: SSHOptions | None = None) -> None:
    """Start the SSH connections to ``environment``'s hosts in the background.

    A deploy calls this before it loads the compose model, so the handshakes
    overlap that local work (:meth:`SSHHost.warm_up`).
    """
    for host in environment_hosts(environment, options):
        host.warm_up()


def host_target(environment: EnvironmentConfig, name: str) -> SSHTarget:
    """Where ssh reaches host ``name``; ConfigError when it has no address yet."""
    host = environment.hosts[name]
    return SSHTarget(name, host_address(environment, name), host.user, host.port)


def host_address(environment: EnvironmentConfig, name: str) -> str:
    """The address of host ``name``; ConfigError when `infra up` has not created it yet."""
    address = environment.hosts[name].address
    if address is None:
        raise UsageError(
            f"host {name} has no address: it is created by `stagecraft infra up`",
            hint="run `stagecraft infra up --env <env>` (it records the address in "
            ".stagecraft/infra/<env>.yml), or set its `address:` in stagecraft.yml",
        )
    return address


def ssh_options(environment: EnvironmentConfig, base: SSHOptions | None = None) -> SSHOptions:
    """``base`` (default: from the environment variables) with the environment's ``ssh:``."""
    opts = base if base is not None else SSHOptions.from_env()
    ssh = environment.ssh
    if ssh.known_hosts:
        opts = replace(opts, known_hosts=Path(ssh.known_hosts))
    if ssh.identity:
        opts = replace(opts, identity=Path(ssh.identity))
    return opts

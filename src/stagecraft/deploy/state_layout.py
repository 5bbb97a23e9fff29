"""Where host state lives (ADR 0005 section 2) and the SSH hosts of an environment."""

from __future__ import annotations

import posixpath

from stagecraft.config.models import EnvironmentConfig
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
    opts = options if options is not None else SSHOptions.from_env()
    return [
        SSHHost(SSHTarget(name, host.address, host.user, host.port), opts)
        for name, host in environment.hosts.items()
    ]

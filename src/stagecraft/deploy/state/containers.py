"""What actually runs on the hosts of an environment, read from container labels.

One SSH round trip per host: ``docker ps -a`` filtered by the project and env
labels (ADR 0005), then ``docker inspect`` of those containers for labels,
state, health and start time. Hosts are read in parallel; an unreachable host
is an :class:`~stagecraft.runtime.fanout.Outcome` with an error, never an
exception that hides the other hosts.

Example::

    from stagecraft.deploy.state.containers import read_states
    from stagecraft.runtime.ssh import SSHHost, SSHTarget

    hosts = [SSHHost(SSHTarget("web-1", "10.0.0.11", "root", 22))]
    result = read_states(hosts, project="fleet", env="production")
    for outcome in result.outcomes:
        if outcome.ok:
            print(outcome.name, sorted(outcome.value.services))
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from stagecraft.deploy.secret_digest import LABEL as SECRETS_LABEL
from stagecraft.deploy.secret_digest import parse_label
from stagecraft.errors import ExitCode, StagecraftError
from stagecraft.runtime.fanout import GroupResult, fan_out
from stagecraft.runtime.ssh import SSHHost

RUNNING_STATES = frozenset({"running", "restarting"})


class StateError(StagecraftError):
    """A host answered, but what Docker printed cannot be read."""

    exit_code = ExitCode.FAILED


@dataclass(frozen=True)
class ContainerState:
    """One container Stagecraft started, as Docker reports it."""

    id: str
    name: str
    service: str
    release: str | None
    version: str | None
    image: str
    image_id: str
    config_hash: str | None
    kind: str | None
    state: str
    health: str | None
    started_at: str | None
    secret_digests: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def running(self) -> bool:
        """Running (or restarting): it counts as deployed."""
        return self.state in RUNNING_STATES

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id[:12],
            "name": self.name,
            "service": self.service,
            "release": self.release,
            "version": self.version,
            "image": self.image,
            "config_hash": self.config_hash,
            "kind": self.kind,
            "state": self.state,
            "health": self.health,
            "started_at": self.started_at,
        }


@dataclass(frozen=True)
class HostState:
    """Every Stagecraft container of one project and env on one host, by service."""

    host: str
    containers: tuple[ContainerState, ...]

    @cached_property
    def services(self) -> dict[str, tuple[ContainerState, ...]]:
        """Service -> its containers, newest release first (computed once: planning asks often)."""
        found: dict[str, list[ContainerState]] = {}
        for container in self.containers:
            found.setdefault(container.service, []).append(container)
        return {name: tuple(_newest_first(found[name])) for name in sorted(found)}

    def running(self, service: str) -> tuple[ContainerState, ...]:
        """The running containers of ``service``, newest release first."""
        return tuple(c for c in self.services.get(service, ()) if c.running)

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "services": {
                name: [c.to_json() for c in containers]
                for name, containers in self.services.items()
            },
        }


def state_command(project: str, env: str) -> str:
    """The shell command listing and inspecting the containers of ``project``/``env``."""
    ps = shlex.join(
        [
            "docker",
            "ps",
            "-a",
            "-q",
            "--no-trunc",
            "--filter",
            f"label=stagecraft.project={project}",
            "--filter",
            f"label=stagecraft.env={env}",
        ]
    )
    return f'ids=$({ps}) || exit $?; if [ -n "$ids" ]; then docker inspect $ids; else echo "[]"; fi'


def read_host_state(host: SSHHost, project: str, env: str, *, timeout: float = 60) -> HostState:
    """The containers of ``project``/``env`` on ``host``."""
    result = host.run(state_command(project, env), timeout=timeout)
    return parse_inspect(host.name, result.stdout)


def read_states(
    hosts: Sequence[SSHHost], *, project: str, env: str, parallel: int = 8
) -> GroupResult[HostState]:
    """Every host's state, in parallel; failures are per-host outcomes."""
    return fan_out(
        list(hosts),
        lambda host: read_host_state(host, project, env),
        name=lambda host: host.name,
        parallel=parallel,
    )


def parse_inspect(host: str, text: str) -> HostState:
    """A :class:`HostState` from ``docker inspect`` JSON output (pure; for tests too)."""
    try:
        data = json.loads(text or "[]")
    except json.JSONDecodeError as exc:
        raise StateError(f"{host}: unreadable `docker inspect` output ({exc.msg})") from None
    if not isinstance(data, list):
        raise StateError(f"{host}: `docker inspect` printed {type(data).__name__}, not a list")
    containers = [_container(item) for item in data if isinstance(item, Mapping)]
    return HostState(host, tuple(sorted(containers, key=lambda c: (c.service, c.name))))


def _container(item: Mapping[str, Any]) -> ContainerState:
    """One ``docker inspect`` entry."""
    config = item.get("Config") or {}
    labels: Mapping[str, str] = config.get("Labels") or {}
    state = item.get("State") or {}
    health = state.get("Health") or {}
    started = state.get("StartedAt")
    return ContainerState(
        id=str(item.get("Id", "")),
        name=str(item.get("Name", "")).lstrip("/"),
        service=labels.get("stagecraft.service") or labels.get("com.docker.compose.service", "?"),
        release=labels.get("stagecraft.release"),
        version=labels.get("stagecraft.version"),
        image=str(config.get("Image", "")),
        image_id=str(item.get("Image", "")),
        config_hash=labels.get("stagecraft.config-hash"),
        kind=labels.get("stagecraft.kind"),
        state=str(state.get("Status", "unknown")),
        health=health.get("Status"),
        started_at=None if not started or started.startswith("0001-") else str(started),
        secret_digests=parse_label(labels.get(SECRETS_LABEL)),
    )


def _newest_first(containers: list[ContainerState]) -> list[ContainerState]:
    """Running first, then by release id (sortable by time), newest first."""
    return sorted(containers, key=lambda c: (not c.running, _desc(c.release or ""), c.name))


def _desc(text: str) -> tuple[int, ...]:
    return tuple(-ord(ch) for ch in text)

"""The ``local`` cloud: throw-away SSH + Docker hosts on this Linux machine."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from stagecraft.errors import PrerequisiteMissing, ProviderError
from stagecraft.providers.base import ProviderConfig
from stagecraft.providers.cloud import (
    CloudHost,
    CloudProvider,
    CloudSession,
    Machine,
    Server,
    machine_name,
    machine_tags,
)

RECORD = "servers.json"


class LocalConfig(ProviderConfig):
    """``cloud.providers.local``."""

    workdir: str = Field(
        default="/var/lib/stagecraft-local",
        description="Where the hosts' data lives (one directory per project and environment).",
    )


class LocalCloud(CloudProvider):
    """Throw-away hosts on this Linux machine, like kind for Kubernetes (needs root).

    Each host is a network namespace on a private bridge with its own dockerd and
    sshd (the implementation the test sandbox uses, :mod:`stagecraft.localhosts`).
    They keep running after ``infra up`` ends, until ``infra down`` removes every
    namespace, process, mount, link, firewall rule and file of them. The hosts
    reach each other and this machine, not the internet: images travel with the
    default ``transfer: ssh``, and the edge proxy's image is sent from the local
    Docker daemon (``docker pull caddy:2`` here first).

    Config keys (``cloud.providers.local``):

    - ``workdir``: where the hosts' data lives (default ``/var/lib/stagecraft-local``).

    Example ``stagecraft.yml``::

        environments:
          sandbox:
            cloud: {provider: local}
            hosts:
              web-1: {roles: [web]}
              data-1: {roles: [data]}
            roles: {web: [web], data: [db]}

    then ``sudo stagecraft infra up --env sandbox`` and ``stagecraft deploy --env
    sandbox``. The hosts' SSH keys are generated here, so they are recorded
    exactly (no first-use trust), and ``infra up`` records the key that logs in.
    """

    id: ClassVar[str] = "local"
    Config: ClassVar[type[ProviderConfig]] = LocalConfig
    config: LocalConfig

    @property
    def token_env(self) -> str:
        return ""  # no account, no token

    def desired_machines(
        self, project: str, environment: str, hosts: Sequence[CloudHost]
    ) -> list[Machine]:
        machines = [
            Machine(
                machine_name(project, environment, host.name),
                host.name,
                None,
                "namespace",
                "this machine's docker and sshd",
                machine_tags(project, environment, host.roles, host=host.name),
            )
            for host in hosts
        ]
        return sorted(machines, key=lambda m: m.name)

    def open(self, token: str | None) -> LocalSession:
        return LocalSession(Path(self.config.workdir))


class LocalSession(CloudSession):
    """The hosts of one environment live in ``<workdir>/<project>-<env>/``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._dir: Path | None = None
        self._names = ("", "")

    def servers(self, project: str, environment: str) -> list[Server]:
        from stagecraft.localhosts import hostos

        self._dir = self.workdir / f"{project}-{environment}"
        self._names = (project, environment)
        record = self._record()
        if not record:
            return []
        prefix = record["prefix"]
        alive = set(hostos.netns_names(rf"{prefix}-h\d+"))
        return [
            Server(
                f"{prefix}-{host['sandbox']}",
                name,
                "active" if f"{prefix}-{host['sandbox']}" in alive else "off",
                tuple(host["tags"]),
                host["address"],
                host["address"],
            )
            for name, host in sorted(record["hosts"].items())
        ]

    def create(self, machines: Sequence[Machine]) -> list[Server]:
        from stagecraft.localhosts.sandbox import Sandbox

        envdir = self._envdir()
        if self._record():
            raise ProviderError(
                "the local cloud creates an environment's hosts together, and some exist",
                hint="run `stagecraft infra down` and then `stagecraft infra up` to add hosts",
            )
        prefix = _prefix(envdir)
        envdir.mkdir(parents=True, exist_ok=True)
        try:
            sandbox = Sandbox(len(machines), workdir=envdir / "hosts", prefix=prefix).start()
        except PrerequisiteMissing as exc:
            raise ProviderError(
                f"the local cloud cannot create hosts here: {exc.message}",
                hint="run `stagecraft infra up` as root on Linux (it creates network "
                "namespaces, bridges and firewall rules); " + (exc.hint or ""),
            ) from None
        sandbox.detach(owner=envdir.name)
        ordered = sorted(machines, key=lambda m: m.name)
        record = {
            "prefix": prefix,
            "identity": str(sandbox.identity),
            "hosts": {
                machine.name: {
                    "host": machine.host,
                    "sandbox": made.name,
                    "address": made.address,
                    "tags": list(machine.tags),
                }
                for machine, made in zip(ordered, sandbox.hosts, strict=True)
            },
        }
        (envdir / RECORD).write_text(json.dumps(record, indent=2) + "\n")
        return [server for server in self._listed() if server.name in {m.name for m in machines}]

    def wait_running(self, servers: Sequence[Server], timeout: float) -> list[Server]:
        """Created hosts already answer (the sandbox waits for their sshd and dockerd)."""
        listed = {server.name: server for server in self._listed()}
        off = [s.name for s in servers if listed.get(s.name, s).status != "active"]
        if off:
            raise ProviderError(
                f"local hosts {', '.join(off)} are not running (this machine restarted?)",
                hint="run `stagecraft infra down` and `stagecraft infra up` to make them again",
            )
        return [listed[s.name] for s in servers]

    def destroy(self, servers: Sequence[Server]) -> None:
        from stagecraft.localhosts.state import cleanup, unkeep

        record = self._record()
        if not record:
            return
        ours = set(record["hosts"])
        strangers = [s.name for s in servers if s.name not in ours]
        if strangers:
            raise ProviderError(f"not hosts of this environment: {', '.join(strangers)}")
        envdir = self._envdir()
        cleanup(record["prefix"], workdir=envdir / "hosts")
        unkeep(record["prefix"])
        shutil.rmtree(envdir, ignore_errors=True)

    def known_host_keys(self, server: Server) -> list[str]:
        host = self._record().get("hosts", {}).get(server.name)
        if host is None:
            return []
        public = self._envdir() / "hosts" / host["sandbox"] / "ssh_host_ed25519_key.pub"
        kind, key = public.read_text().split()[:2]
        return [f"{host['address']} {kind} {key}"]

    def login_identity(self) -> str | None:
        identity = self._record().get("identity")
        return str(identity) if identity else None

    def _listed(self) -> list[Server]:
        return self.servers(*self._names) if self._record() else []

    def _envdir(self) -> Path:
        if self._dir is None:
            raise ProviderError("local cloud: servers() must be called first")
        return self._dir

    def _record(self) -> dict[str, Any]:
        path = self._envdir() / RECORD
        try:
            found: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        return found


def _prefix(envdir: Path) -> str:
    """A sandbox prefix of its own per environment: ``l`` and 5 hex digits of its path."""
    return "l" + hashlib.sha256(str(envdir).encode()).hexdigest()[:5]

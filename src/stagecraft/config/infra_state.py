"""What `stagecraft infra up` learned about an environment's servers (ADR 0011).

``infra up`` writes ``.stagecraft/infra/<env>.yml`` next to ``stagecraft.yml``
(commit it: it holds no secret) and records each new server's SSH host key in
``.stagecraft/infra/<env>.known_hosts``::

    # Written by `stagecraft infra up --env production`; `infra down` removes it.
    provider: digitalocean
    hosts:
      web-1: {id: '3164494', server: shop-production-web-1, address: 203.0.113.10,
              private_address: 10.114.0.2}

When ``stagecraft.yml`` is loaded, a host of that environment without an
``address:`` takes the recorded one (and ``labels.private_address`` the
private one, when it has none), the environment's ``ssh.known_hosts``
defaults to the recorded keys and ``ssh.identity`` to the key a cloud made to
log in with (``identity:``, the ``local`` cloud's). A host written in ``stagecraft.yml`` wins: the
file only fills what the config leaves out. The hosts stay the source of
truth for releases; this file only says where they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stagecraft.config.state_file import load_state
from stagecraft.config.state_file import write_state as write_state_file
from stagecraft.errors import StagecraftError

INFRA_DIR = Path(".stagecraft") / "infra"
PRIVATE_ADDRESS_LABEL = "private_address"  # as deploy.render reads it


class InfraStateError(StagecraftError):
    """The state file exists but cannot be read."""


@dataclass(frozen=True)
class HostRecord:
    """One server ``infra up`` created (or found) for a host of ``stagecraft.yml``."""

    id: str
    server: str
    address: str
    private_address: str | None = None

    def to_json(self) -> dict[str, str]:
        found = {"id": self.id, "server": self.server, "address": self.address}
        if self.private_address:
            found["private_address"] = self.private_address
        return found


@dataclass(frozen=True)
class InfraState:
    """The servers of one environment, by host name."""

    env: str
    provider: str
    hosts: dict[str, HostRecord] = field(default_factory=dict)
    identity: str | None = None  # a key the cloud made to log in with (the local cloud's)

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"provider": self.provider}
        if self.identity:
            found["identity"] = self.identity
        found["hosts"] = {name: record.to_json() for name, record in sorted(self.hosts.items())}
        return found


def state_path(root: Path, env: str) -> Path:
    """``<root>/.stagecraft/infra/<env>.yml``."""
    return root / INFRA_DIR / f"{env}.yml"


def known_hosts_path(root: Path, env: str) -> Path:
    """``<root>/.stagecraft/infra/<env>.known_hosts``: the host keys ``infra up`` recorded."""
    return root / INFRA_DIR / f"{env}.known_hosts"


def read_state(root: Path, env: str) -> InfraState | None:
    """The recorded state of ``env`` (None when there is no file)."""
    path = state_path(root, env)
    fix = f"remove {path} and run `stagecraft infra up --env {env}` again"
    data = load_state(path, InfraStateError, fix)
    if data is None:
        return None
    try:
        hosts = {
            str(name): HostRecord(
                str(raw["id"]),
                str(raw["server"]),
                str(raw["address"]),
                str(raw["private_address"]) if raw.get("private_address") else None,
            )
            for name, raw in (data.get("hosts") or {}).items()
        }
        identity = str(data["identity"]) if data.get("identity") else None
        return InfraState(env, str(data["provider"]), hosts, identity)
    except (AttributeError, KeyError, TypeError) as exc:
        raise InfraStateError(
            f"{path} is not a state file of `infra up` ({exc})", hint=fix
        ) from None


def write_state(root: Path, state: InfraState) -> Path:
    """Write ``state`` atomically (a reader sees the old file or the new one); its path."""
    path = state_path(root, state.env)
    header = (
        f"# Written by `stagecraft infra up --env {state.env}`; `infra down` removes it.\n"
        "# Addresses of the servers it created; stagecraft.yml's own `address:` wins.\n"
    )
    return write_state_file(path, header, state.to_json())


def merge_into(data: dict[str, Any], root: Path) -> None:
    """Fill what ``stagecraft.yml``'s raw ``data`` leaves out from each environment's state."""
    environments = data.get("environments")
    if not isinstance(environments, dict):
        return
    for env, body in environments.items():
        if not isinstance(body, dict):
            continue
        _resolve_ssh_paths(body, root)
        if not isinstance(env, str) or not state_path(root, env).is_file():
            continue
        state = read_state(root, env)
        if state is None:
            continue
        hosts = body.get("hosts")
        if isinstance(hosts, dict):
            for name, record in state.hosts.items():
                host = hosts.get(name)
                if isinstance(host, dict) and not host.get("address"):
                    host["address"] = record.address
                    labels = host.setdefault("labels", {})
                    if record.private_address and isinstance(labels, dict):
                        labels.setdefault(PRIVATE_ADDRESS_LABEL, record.private_address)
        ssh = body.setdefault("ssh", {})
        if isinstance(ssh, dict) and not ssh.get("known_hosts"):
            ssh["known_hosts"] = str(known_hosts_path(root, env))
        if isinstance(ssh, dict) and state.identity and not ssh.get("identity"):
            ssh["identity"] = state.identity


def _resolve_ssh_paths(body: dict[str, Any], root: Path) -> None:
    """``ssh.known_hosts`` and ``ssh.identity`` are relative to ``stagecraft.yml``."""
    ssh = body.get("ssh")
    if not isinstance(ssh, dict):
        return
    for key in ("known_hosts", "identity"):
        value = ssh.get(key)
        if isinstance(value, str) and value:
            ssh[key] = str((root / Path(value).expanduser()).resolve())

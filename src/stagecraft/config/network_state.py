"""Where each host of an environment is on its private mesh (ADR 0012).

``stagecraft hosts bootstrap`` joins every host to the environment's network
provider (tailscale) and writes what it learned to
``.stagecraft/network/<env>.yml`` next to ``stagecraft.yml`` (0644, no secret
in it; commit it with the infra state)::

    # Written by `stagecraft hosts bootstrap --env production`.
    provider: tailscale
    hosts:
      web-1: {name: shop-web-1, address: 100.101.102.103}
      data-1: {name: shop-data-1, address: 100.88.1.2}

Rendering reads it: a service that depends on a service on another host
reaches it at that host's ``address`` (the mesh IP), and the ports it needs
are published on that address only. A host missing from the file has not
joined yet, which rendering reports with the command that fixes it.

Example::

    state = read_network_state(loaded.root, "production")
    state.hosts["web-1"].address     # "100.101.102.103"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stagecraft.config.state_file import load_state
from stagecraft.config.state_file import write_state as write_state_file
from stagecraft.errors import StagecraftError

NETWORK_DIR = Path(".stagecraft") / "network"


class NetworkStateError(StagecraftError):
    """The network state file exists but cannot be read."""


@dataclass(frozen=True)
class MeshRecord:
    """One host on the mesh: the name peers know it by and its mesh IPv4 address."""

    name: str
    address: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "address": self.address}


@dataclass(frozen=True)
class NetworkState:
    """The mesh addresses of one environment's hosts, by host name."""

    env: str
    provider: str
    hosts: dict[str, MeshRecord] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "hosts": {name: record.to_json() for name, record in sorted(self.hosts.items())},
        }


def network_state_path(root: Path, env: str) -> Path:
    """``<root>/.stagecraft/network/<env>.yml``."""
    return root / NETWORK_DIR / f"{env}.yml"


def read_network_state(root: Path, env: str) -> NetworkState | None:
    """The recorded mesh of ``env`` (None when there is no file)."""
    path = network_state_path(root, env)
    fix = f"remove {path} and run `stagecraft hosts bootstrap --env {env}` again"
    data = load_state(path, NetworkStateError, fix)
    if data is None:
        return None
    try:
        hosts = {
            str(name): MeshRecord(str(raw["name"]), str(raw["address"]))
            for name, raw in (data.get("hosts") or {}).items()
        }
        return NetworkState(env, str(data["provider"]), hosts)
    except (AttributeError, KeyError, TypeError) as exc:
        raise NetworkStateError(
            f"{path} is not a network state file of `hosts bootstrap` ({exc})", hint=fix
        ) from None


def write_network_state(root: Path, state: NetworkState) -> Path:
    """Write ``state`` atomically (a reader sees the old file or the new one); its path."""
    path = network_state_path(root, state.env)
    header = (
        f"# Written by `stagecraft hosts bootstrap --env {state.env}`: each host's name and\n"
        "# address on the private mesh, used for cross-host wiring. No secret in it.\n"
    )
    return write_state_file(path, header, state.to_json())

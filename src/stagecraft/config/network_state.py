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

import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise NetworkStateError(f"cannot read {path}: {exc.strerror}") from None
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    fix = f"remove {path} and run `stagecraft hosts bootstrap --env {env}` again"
    try:
        data = YAML(typ="safe").load(text)
    except YAMLError as exc:
        raise NetworkStateError(f"{path} is not valid YAML: {exc}", hint=fix) from None
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
    from ruamel.yaml import YAML

    path = network_state_path(root, state.env)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = io.StringIO()
    out.write(
        f"# Written by `stagecraft hosts bootstrap --env {state.env}`: each host's name and\n"
        "# address on the private mesh, used for cross-host wiring. No secret in it.\n"
    )
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    yaml.dump(state.to_json(), out)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(out.getvalue())
    os.chmod(temp, 0o644)  # no secret in it; meant to be committed
    os.replace(temp, path)
    return path

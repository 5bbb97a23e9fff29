"""The ``tailscale`` network: hosts join a tailnet and reach each other by MagicDNS name."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field, field_validator

from stagecraft.errors import ProviderError
from stagecraft.providers.base import ProviderConfig
from stagecraft.providers.builtin._dev import ENV_NAME
from stagecraft.providers.network import (
    HostCommand,
    MeshNode,
    MeshStatus,
    NetworkProvider,
    Version,
    VersionCheck,
    format_version,
    parse_version,
)
from stagecraft.providers.secrets import SecretValue

TAG = r"^tag:[A-Za-z][A-Za-z0-9-]*$"
_NOT_IN_LABEL = re.compile(r"[^a-z0-9-]+")


class TailscaleConfig(ProviderConfig):
    """``network.providers.tailscale``."""

    auth_key_env: str = "TS_AUTHKEY"
    tags: list[str] = Field(default_factory=list)
    hostname_prefix: str = ""
    accept_routes: bool = False
    tailnet: str | None = Field(default=None, pattern=r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")
    min_version: str = "1.50.0"

    @field_validator("auth_key_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not ENV_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not an environment variable name")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        bad = [tag for tag in value if not re.fullmatch(TAG, tag)]
        if bad:
            raise ValueError(
                f"ACL tags look like tag:server (letters, digits, '-'), not {', '.join(bad)}"
            )
        return value

    @field_validator("min_version")
    @classmethod
    def _version(cls, value: str) -> str:
        try:
            parse_version(value)
        except ProviderError:
            raise ValueError(f"{value!r} is not a version like 1.50.0") from None
        return value


class TailscaleNetwork(NetworkProvider):
    """Tailscale: every host joins the tailnet and is reached by its MagicDNS name.

    Config keys (``network.providers.tailscale``):

    - ``auth_key_env``: the secret/environment variable holding a Tailscale auth
      key (default ``TS_AUTHKEY``). The key is only ever passed on stdin.
    - ``tags``: ACL tags the hosts advertise (``tag:server``; the auth key must be
      allowed to use them).
    - ``hostname_prefix``: prepended to each host's name to make its Tailscale
      hostname (e.g. ``shop-staging-`` gives ``shop-staging-web-1``).
    - ``accept_routes``: accept subnet routes other nodes advertise (default false).
    - ``tailnet``: the tailnet's MagicDNS suffix (``tail1234.ts.net``); with it,
      mesh names are fully qualified, without it they are bare hostnames, which
      MagicDNS resolves on tailnet nodes through its search domain.
    - ``min_version``: the oldest Tailscale client accepted (default 1.50.0),
      compared as a version (so 1.9 < 1.10).

    A host joins with ``tailscale up --reset --auth-key=file:/dev/stdin
    --hostname=<name> [--advertise-tags=...] [--accept-routes]``, the auth key
    written to the command's stdin: ``tailscale up`` reads the key from a file
    when the value starts with ``file:``
    (https://tailscale.com/kb/1241/tailscale-up; ``cmd/tailscale/cli/up.go``),
    so it never appears in the process list or a shell history. ``--reset``
    makes the flags the complete desired settings, so running it again on a
    joined host converges instead of failing on a changed setting.

    The rest is read from the client: ``tailscale status --json`` (the
    ``ipnstate.Status`` document: ``BackendState``, ``Self``, ``Peer``) says
    whether a host already runs as the wanted hostname with the wanted tags (then
    bootstrap does not run ``up`` again, and a one-off key is not spent),
    ``tailscale ip -4`` gives the host's mesh address, and ``tailscale ping -c 1
    --timeout 5s <address>`` checks that a peer answers over the tailnet. Mesh
    traffic arrives on the ``tailscale0`` interface.

    Example ``stagecraft.yml``::

        network:
          provider: tailscale
          providers:
            tailscale:
              auth_key_env: TS_AUTHKEY
              tags: [tag:server]
              hostname_prefix: shop-
              tailnet: tail1234.ts.net

    >>> ts = TailscaleNetwork(TailscaleNetwork.Config.model_validate(
    ...     {"tags": ["tag:server"], "hostname_prefix": "shop-", "tailnet": "tail1234.ts.net"}))
    >>> [join] = ts.join_commands("web-1", SecretValue("tskey-auth-x"))
    >>> for arg in join.argv:
    ...     print(arg)
    tailscale
    up
    --reset
    --auth-key=file:/dev/stdin
    --hostname=shop-web-1
    --advertise-tags=tag:server
    >>> join.stdin
    SecretValue('***')
    >>> ts.mesh_name("web-1")
    'shop-web-1.tail1234.ts.net'
    >>> ts.check_version("1.9.3\\n  tailscale commit: abc").ok
    False
    >>> status = ts.parse_status('{"BackendState": "Running", "Self": {"HostName": "shop-web-1",'
    ...     ' "TailscaleIPs": ["100.64.0.7", "fd7a:115c:a1e0::7"], "Online": true,'
    ...     ' "Tags": ["tag:server"]}, "Peer": null}')
    >>> status.self.ipv4, ts.joined_as(status, "web-1"), ts.joined_as(status, "web-2")
    ('100.64.0.7', True, False)
    """

    id: ClassVar[str] = "tailscale"
    Config: ClassVar[type[ProviderConfig]] = TailscaleConfig
    config: TailscaleConfig

    @property
    def auth_key_env(self) -> str:
        return self.config.auth_key_env

    @property
    def minimum(self) -> Version:
        """``min_version`` as a version tuple."""
        return parse_version(self.config.min_version)

    def hostname(self, host: str) -> str:
        """The Tailscale hostname of ``host``: prefixed, a valid lowercase DNS label."""
        raw = (self.config.hostname_prefix + host).lower()
        label = _NOT_IN_LABEL.sub("-", raw).strip("-")[:63].rstrip("-")
        if not label:
            raise ProviderError(
                f"host {host!r} gives no usable Tailscale hostname",
                hint="use letters, digits and '-' in host names",
            )
        return label

    def join_commands(self, host: str, auth_key: SecretValue) -> list[HostCommand]:
        argv = [
            "tailscale",
            "up",
            "--reset",
            "--auth-key=file:/dev/stdin",
            f"--hostname={self.hostname(host)}",
        ]
        tags = sorted(set(self.config.tags))
        if tags:
            argv.append(f"--advertise-tags={','.join(tags)}")
        if self.config.accept_routes:
            argv.append("--accept-routes")
        return [HostCommand(tuple(argv), stdin=auth_key)]

    def mesh_name(self, host: str) -> str:
        name = self.hostname(host)
        return f"{name}.{self.config.tailnet}" if self.config.tailnet else name

    def version_command(self) -> HostCommand:
        return HostCommand(("tailscale", "version"))

    def check_version(self, output: str) -> VersionCheck:
        try:
            installed = parse_version(output)
        except ProviderError as exc:
            raise ProviderError(
                f"tailscale version: {exc.message}",
                hint="is tailscale installed on the host? see https://tailscale.com/download",
            ) from None
        return VersionCheck(installed, self.minimum)

    @property
    def interface(self) -> str:
        return "tailscale0"

    def status_command(self) -> HostCommand:
        return HostCommand(("tailscale", "status", "--json"))

    def parse_status(self, output: str) -> MeshStatus:
        try:
            data = json.loads(output)
        except ValueError:
            first = output.strip().splitlines()[0][:80] if output.strip() else "(no output)"
            raise ProviderError(
                f"`tailscale status --json` printed no JSON: {first!r}",
                hint="is tailscaled running on the host? (`systemctl start tailscaled`)",
            ) from None
        if not isinstance(data, dict) or "BackendState" not in data:
            raise ProviderError("`tailscale status --json` printed no BackendState")
        state = str(data["BackendState"])
        raw_self = data.get("Self")
        peers = data.get("Peer") or {}
        return MeshStatus(
            state=state,
            running=state == "Running",
            self=_node(raw_self) if isinstance(raw_self, Mapping) else None,
            peers=tuple(
                _node(peer) for _, peer in sorted(peers.items()) if isinstance(peer, Mapping)
            ),
        )

    def joined_as(self, status: MeshStatus, host: str) -> bool:
        if not super().joined_as(status, host) or status.self is None:
            return False
        return sorted(status.self.tags) == sorted(set(self.config.tags))

    def address_command(self) -> HostCommand:
        return HostCommand(("tailscale", "ip", "-4"))

    def ping_command(self, address: str) -> HostCommand:
        return HostCommand(("tailscale", "ping", "-c", "1", "--timeout", "5s", address))

    def install_hint(self) -> str:
        return (
            "install Tailscale on the host (https://tailscale.com/download; Linux: "
            "`curl -fsSL https://tailscale.com/install.sh | sh`), then start tailscaled"
        )

    def upgrade_hint(self, check: VersionCheck) -> str:
        return (
            f"tailscale {format_version(check.installed)} is older than "
            f"{format_version(check.minimum)}: upgrade it (`tailscale update`) or lower "
            "network.providers.tailscale.min_version"
        )


def _node(raw: Mapping[str, Any]) -> MeshNode:
    """A ``PeerStatus`` of ``tailscale status --json`` (ipn/ipnstate) as a :class:`MeshNode`."""
    return MeshNode(
        name=str(raw.get("HostName") or ""),
        addresses=tuple(str(a) for a in raw.get("TailscaleIPs") or ()),
        online=bool(raw.get("Online")),
        dns_name=str(raw.get("DNSName") or "").rstrip("."),
        tags=tuple(str(t) for t in raw.get("Tags") or ()),
    )

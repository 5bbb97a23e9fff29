"""The ``tailscale`` network: hosts join a tailnet and reach each other by MagicDNS name."""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field, field_validator

from stagecraft.errors import ProviderError
from stagecraft.providers.base import ProviderConfig
from stagecraft.providers.builtin._dev import ENV_NAME
from stagecraft.providers.network import (
    HostCommand,
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

    def upgrade_hint(self, check: VersionCheck) -> str:
        """What to tell the user when ``check`` fails."""
        return (
            f"tailscale {format_version(check.installed)} is older than "
            f"{format_version(check.minimum)}: upgrade it (`tailscale update`) or lower "
            "network.providers.tailscale.min_version"
        )

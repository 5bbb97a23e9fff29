"""Network providers: the ``network`` provider kind (a private mesh between hosts).

Services placed on different hosts reach each other through a private
network: a mesh VPN such as Tailscale, where every host gets a stable name.
A network provider answers, as pure values:

- :meth:`NetworkProvider.join_commands`: the commands that join a host to the
  mesh, run on that host over SSH by ``stagecraft hosts bootstrap``. Secrets
  (an auth key) travel on the command's stdin (:attr:`HostCommand.stdin`),
  never on its argv, where ``ps`` and shell history would show them.
- :meth:`NetworkProvider.mesh_name`: the name other hosts use to reach a host
  (what cross-host wiring resolves a service's address to).
- :meth:`NetworkProvider.version_command` and :meth:`NetworkProvider.check_version`:
  how to ask a host which version of the mesh client it runs, and whether
  that is recent enough (compared as versions, not as strings).

A third-party network (say, Headscale, or plain WireGuard) implements them::

    class NetbirdNetwork(NetworkProvider):
        \"\"\"NetBird mesh.\"\"\"

        id = "netbird"

        class Config(ProviderConfig):
            setup_key_env: str = "NB_SETUP_KEY"
            domain: str = "netbird.cloud"

        @property
        def auth_key_env(self) -> str:
            return self.config.setup_key_env

        def join_commands(self, host, auth_key):
            return [HostCommand(("sh", "-c", 'netbird up --setup-key "$(cat)"'), stdin=auth_key)]

        def mesh_name(self, host):
            return f"{host}.{self.config.domain}"

        def version_command(self):
            return HostCommand(("netbird", "version"))

        def check_version(self, output):
            return VersionCheck(parse_version(output), minimum=(0, 30, 0))

    # pyproject.toml:
    # [project.entry-points."stagecraft.providers.network"]
    # netbird = "stagecraft_netbird:NetbirdNetwork"
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from stagecraft.errors import ProviderError
from stagecraft.providers.base import Provider
from stagecraft.providers.secrets import SecretValue

Version = tuple[int, int, int]

_VERSION = re.compile(r"(?<![\w.])v?(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class HostCommand:
    """A command to run on a host; ``stdin`` (a secret) is written to its standard input."""

    argv: tuple[str, ...]
    stdin: SecretValue | None = None


def parse_version(text: str) -> Version:
    """The first ``MAJOR.MINOR[.PATCH]`` in ``text`` (a ``--version`` output).

    Suffixes such as ``-t1234abcd`` are ignored. ProviderError if there is none.

    >>> parse_version("1.62.0\\n  tailscale commit: 1234abcd\\n  go version: go1.22.1")
    (1, 62, 0)
    >>> parse_version("1.9.10-tabc") > parse_version("1.10.0")
    False
    """
    match = _VERSION.search(text)
    if match is None:
        first = text.strip().splitlines()[0][:80] if text.strip() else "(no output)"
        raise ProviderError(f"cannot find a version number in {first!r}")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def format_version(version: Version) -> str:
    """``(1, 62, 0)`` -> ``"1.62.0"``."""
    return ".".join(map(str, version))


@dataclass(frozen=True)
class VersionCheck:
    """The installed version of a mesh client against the minimum required."""

    installed: Version
    minimum: Version

    @property
    def ok(self) -> bool:
        """True when the installed version is at least the minimum."""
        return self.installed >= self.minimum

    def __str__(self) -> str:
        verdict = ">=" if self.ok else "<"
        return f"{format_version(self.installed)} {verdict} {format_version(self.minimum)}"


class NetworkProvider(Provider, ABC):
    """Base class of network providers (provider kind ``network``)."""

    kind: ClassVar[str] = "network"

    @property
    @abstractmethod
    def auth_key_env(self) -> str:
        """The secret (environment variable) name holding the key that joins hosts."""

    @abstractmethod
    def join_commands(self, host: str, auth_key: SecretValue) -> list[HostCommand]:
        """Commands that join ``host`` (its name in ``stagecraft.yml``) to the mesh."""

    @abstractmethod
    def mesh_name(self, host: str) -> str:
        """The name other hosts on the mesh reach ``host`` by."""

    @abstractmethod
    def version_command(self) -> HostCommand:
        """The command that prints the mesh client's version on a host."""

    @abstractmethod
    def check_version(self, output: str) -> VersionCheck:
        """Compare the version in ``output`` (of :meth:`version_command`) with the minimum."""

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
- :meth:`NetworkProvider.status_command` and :meth:`NetworkProvider.parse_status`:
  what a host's mesh client says about itself and its peers, as a
  :class:`MeshStatus` (joined or not, its name and addresses, which peers are
  online); :meth:`NetworkProvider.joined_as` tells whether that status already
  is what :meth:`~NetworkProvider.join_commands` would make it (so a second
  bootstrap spends no auth key).
- :meth:`NetworkProvider.address_command` and :meth:`NetworkProvider.parse_address`:
  the host's own IPv4 address on the mesh (what cross-host wiring publishes
  ports on and points ``extra_hosts`` at).
- :meth:`NetworkProvider.ping_command`: a reachability check from one host to
  another over the mesh (exit 0: reached).
- :attr:`NetworkProvider.interface`: the network interface the mesh traffic
  arrives on (``tailscale0``), for firewall rules.

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

        interface = "wt0"

        def status_command(self):
            return HostCommand(("netbird", "status", "--json"))

        def parse_status(self, output):
            data = json.loads(output)
            return MeshStatus(
                state="Running" if data["management"]["connected"] else "Stopped",
                running=data["management"]["connected"],
                self=MeshNode(data["fqdn"].split(".")[0], (data["netbirdIp"].split("/")[0],)),
                peers=tuple(
                    MeshNode(p["fqdn"].split(".")[0], (p["netbirdIp"],),
                             online=p["status"] == "Connected")
                    for p in data["peers"]["details"]
                ),
            )

        def address_command(self):
            return HostCommand(("sh", "-c", "netbird status --ipv4"))

        def ping_command(self, address):
            return HostCommand(("ping", "-c", "1", "-W", "3", address))

    # pyproject.toml:
    # [project.entry-points."stagecraft.providers.network"]
    # netbird = "stagecraft_netbird:NetbirdNetwork"
"""

from __future__ import annotations

import ipaddress
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class MeshNode:
    """One node of the mesh as a host's client sees it: its name, addresses, online or not."""

    name: str
    addresses: tuple[str, ...] = ()
    online: bool = True
    dns_name: str = ""
    tags: tuple[str, ...] = ()

    @property
    def ipv4(self) -> str | None:
        """The node's first IPv4 mesh address, if it has one."""
        return next((a for a in self.addresses if _is_ipv4(a)), None)


@dataclass(frozen=True)
class MeshStatus:
    """What a host's mesh client reports: its state, itself and its peers.

    ``state`` is the client's own word (Tailscale's ``BackendState``:
    ``Running``, ``Stopped``, ``NeedsLogin``...); ``running`` says whether it
    carries traffic. ``self`` is None when the client knows no identity yet.
    """

    state: str
    running: bool
    self: MeshNode | None = None
    peers: tuple[MeshNode, ...] = field(default_factory=tuple)

    def peer(self, name: str) -> MeshNode | None:
        """The peer called ``name`` (its hostname, case-insensitive), an online one first.

        A node that re-joined under the same name may still be listed (offline)
        next to its new self.
        """
        wanted = name.lower()
        found = [p for p in self.peers if p.name.lower() == wanted]
        return next((p for p in found if p.online), found[0] if found else None)


def _is_ipv4(value: str) -> bool:
    try:
        return ipaddress.ip_address(value).version == 4
    except ValueError:
        return False


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

    def install_hint(self) -> str:
        """How to install the mesh client on a host (shown when it is missing)."""
        return f"install the {self.id} client on the host"

    def upgrade_hint(self, check: VersionCheck) -> str:
        """What to tell the user when ``check`` fails."""
        return f"upgrade {self.id} on the host to {format_version(check.minimum)} or newer"

    @property
    @abstractmethod
    def interface(self) -> str:
        """The network interface mesh traffic arrives on, on every host (``tailscale0``)."""

    @abstractmethod
    def status_command(self) -> HostCommand:
        """The command that prints the mesh client's state, identity and peers."""

    @abstractmethod
    def parse_status(self, output: str) -> MeshStatus:
        """The :class:`MeshStatus` in ``output`` (of :meth:`status_command`).

        ProviderError when ``output`` is not what the client prints.
        """

    def joined_as(self, status: MeshStatus, host: str) -> bool:
        """Whether ``status`` already is ``host`` joined as :meth:`join_commands` would make it.

        By default: the client runs and calls itself by the first label of
        :meth:`mesh_name`. Providers with more settings (tags) also compare those.
        """
        wanted = self.mesh_name(host).split(".")[0].lower()
        return status.running and status.self is not None and status.self.name.lower() == wanted

    @abstractmethod
    def address_command(self) -> HostCommand:
        """The command that prints the host's own IPv4 address on the mesh."""

    def parse_address(self, output: str) -> str:
        """The IPv4 address in ``output`` (of :meth:`address_command`); ProviderError if none."""
        for word in output.split():
            if _is_ipv4(word):
                return word
        first = output.strip().splitlines()[0][:80] if output.strip() else "(no output)"
        raise ProviderError(f"no IPv4 mesh address in {first!r}")

    @abstractmethod
    def ping_command(self, address: str) -> HostCommand:
        """A command that exits 0 when the node at ``address`` answers over the mesh."""

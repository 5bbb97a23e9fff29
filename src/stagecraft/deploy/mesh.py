"""Join hosts to the environment's private mesh (the ``network`` provider) over SSH.

Per host (``hosts bootstrap`` runs it on every host in parallel, ADR 0012):

1. ask for the mesh client's version (missing: an error with the install link;
   too old: the upgrade hint);
2. read its status; when it already runs as the wanted name with the wanted
   settings (tags), leave it alone: a second bootstrap runs no ``tailscale up``
   and does not spend a one-off auth key;
3. otherwise run the provider's join commands with the auth key on stdin (the
   key is resolved from the secrets provider only now, once for all hosts);
4. read the host's mesh IPv4 address.

The provider says what to run and how to read it (:mod:`stagecraft.providers.network`);
this module runs it. Example::

    provider = network_provider(loaded, "production")
    key = AuthKey(lambda: resolve_secrets(loaded, "production", None, ["TS_AUTHKEY"])["TS_AUTHKEY"])
    joined = join_host(host, provider, key)
    print(joined.describe())        # "joined tailscale as shop-web-1 (100.64.0.3)"
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from stagecraft.config.loader import LoadedConfig
from stagecraft.errors import ExitCode, HostError, ProviderError, StagecraftError
from stagecraft.providers.network import HostCommand, MeshStatus, NetworkProvider
from stagecraft.providers.secrets import SecretValue
from stagecraft.runtime.process import Completed
from stagecraft.runtime.ssh import SSHHost

JOIN_TIMEOUT = 120.0
"""Seconds ``tailscale up`` may take (it waits until the node is Running)."""
STATUS_TIMEOUT = 30.0


class MeshError(HostError):
    """A host could not join the mesh, or its mesh client answered something unusable."""

    exit_code = ExitCode.FAILED


class MeshClientMissing(MeshError):
    """The mesh client (``tailscale``) is not installed on a host."""

    exit_code = ExitCode.PREREQUISITE_MISSING


@dataclass(frozen=True)
class MeshJoin:
    """One host on the mesh after bootstrap: its mesh name and address, joined now or before."""

    host: str
    provider: str
    name: str
    address: str
    joined: bool

    def describe(self) -> str:
        """``joined tailscale as shop-web-1 (100.64.0.3)`` or ``already on tailscale as ...``."""
        verb = "joined" if self.joined else "already on"
        return f"{verb} {self.provider} as {self.name} ({self.address})"

    def to_json(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "name": self.name,
            "address": self.address,
            "joined": self.joined,
        }


class AuthKey:
    """The auth key, resolved on first use and then shared by every host's thread.

    A failure is remembered too, so every host that needs the key reports the
    same error and the secrets provider is asked once.
    """

    def __init__(self, resolve: Callable[[], SecretValue]) -> None:
        self._resolve = resolve
        self._lock = threading.Lock()
        self._value: SecretValue | None = None
        self._error: StagecraftError | None = None

    def __call__(self) -> SecretValue:
        with self._lock:
            if self._value is None and self._error is None:
                try:
                    self._value = self._resolve()
                except StagecraftError as exc:
                    self._error = exc
            if self._error is not None:
                raise self._error
            assert self._value is not None
            return self._value


def network_provider(loaded: LoadedConfig, env: str) -> NetworkProvider | None:
    """The network provider of ``env`` (its own selection, else the top-level one), if any."""
    selection = loaded.config.network_for(env)
    if selection is None:
        return None
    from stagecraft.providers import registry

    provider = registry("network").create(selection.provider, selection.block())
    assert isinstance(provider, NetworkProvider)
    return provider


def join_host(host: SSHHost, provider: NetworkProvider, auth_key: AuthKey) -> MeshJoin:
    """Make sure ``host`` is on the mesh as ``provider`` wants it; its name and address."""
    check_client(host, provider)
    status = read_status(host, provider)
    joined = not provider.joined_as(status, host.name)
    if joined:
        key = auth_key()
        for command in provider.join_commands(host.name, key):
            result = run_command(host, command, timeout=JOIN_TIMEOUT)
            if not result.ok:
                raise MeshError(
                    host.name,
                    f"`{_shown(command)}` failed (exit {result.returncode}): "
                    f"{_reason(result, key)}",
                    hint=f"check the auth key in {provider.auth_key_env}: it must be valid and "
                    "unexpired, reusable when it joins several hosts, and allowed to use the "
                    f"configured tags (network.providers.{provider.id})",
                )
        status = read_status(host, provider)
        if not status.running:
            raise MeshError(
                host.name,
                f"{provider.id} did not come up after joining (state {status.state})",
                hint=f"look at `{_shown(provider.status_command())}` on {host.name}: a key "
                "that needs approval waits for an admin to authorize the machine",
            )
    return MeshJoin(
        host.name, provider.id, provider.mesh_name(host.name), mesh_address(host, provider), joined
    )


def check_client(host: SSHHost, provider: NetworkProvider) -> None:
    """MeshClientMissing / MeshError unless the host runs a recent enough mesh client."""
    command = provider.version_command()
    result = run_command(host, command, timeout=STATUS_TIMEOUT)
    if result.returncode == 127 or "not found" in result.stderr:
        raise MeshClientMissing(
            host.name,
            f"`{command.argv[0]}` is not installed (network provider {provider.id})",
            hint=provider.install_hint(),
        )
    try:
        check = provider.check_version(result.stdout if result.ok else result.output)
    except ProviderError as exc:
        raise MeshError(host.name, exc.message, hint=exc.hint or provider.install_hint()) from None
    if not check.ok:
        raise MeshError(
            host.name, f"{provider.id} {check}: too old", hint=provider.upgrade_hint(check)
        )


def read_status(host: SSHHost, provider: NetworkProvider) -> MeshStatus:
    """The mesh client's status on ``host``; MeshError when it cannot be read."""
    command = provider.status_command()
    result = run_command(host, command, timeout=STATUS_TIMEOUT)
    try:
        return provider.parse_status(result.stdout)
    except ProviderError as exc:
        reason = _reason(result) if not result.ok else exc.message
        raise MeshError(
            host.name, f"`{_shown(command)}`: {reason}", hint=exc.hint or provider.install_hint()
        ) from None


def mesh_address(host: SSHHost, provider: NetworkProvider) -> str:
    """The IPv4 address of ``host`` on the mesh; MeshError when it has none."""
    command = provider.address_command()
    result = run_command(host, command, timeout=STATUS_TIMEOUT)
    try:
        if not result.ok:
            raise ProviderError(_reason(result))
        return provider.parse_address(result.stdout)
    except ProviderError as exc:
        raise MeshError(
            host.name,
            f"`{_shown(command)}`: {exc.message}",
            hint=f"run `stagecraft hosts bootstrap` again; if it persists, look at "
            f"`{_shown(provider.status_command())}` on {host.name}",
        ) from None


def run_command(host: SSHHost, command: HostCommand, *, timeout: float) -> Completed:
    """Run ``command`` on ``host`` (its secret, if any, on stdin); never raises for its exit."""
    data = command.stdin.reveal().encode() if command.stdin is not None else None
    return host.run(list(command.argv), input=data, timeout=timeout, check=False)


def _shown(command: HostCommand) -> str:
    return " ".join(command.argv)


def _reason(result: Completed, key: SecretValue | None = None) -> str:
    """The lines of ``result``'s output that say why it failed (never the key)."""
    lines = [line.strip() for line in (result.stderr or result.stdout).splitlines()]
    text = "; ".join(line for line in lines if line) or f"exit {result.returncode}"
    if key is not None and key.reveal():
        text = text.replace(key.reveal(), "***")
    return text

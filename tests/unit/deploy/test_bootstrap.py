"""hosts bootstrap and the edge seam, without a real host: the configured proxy provider."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, ClassVar

import pytest

from stagecraft.config.loader import LoadedConfig, load_config
from stagecraft.deploy.bootstrap import bootstrap_host
from stagecraft.deploy.edge import Edge, edge_for
from stagecraft.errors import HostError
from stagecraft.providers import base
from stagecraft.providers.base import ProviderConfig, Registry
from stagecraft.providers.builtin.proxy_caddy import CaddyProxy
from stagecraft.providers.builtin.proxy_caddy.host import CaddyHost
from stagecraft.providers.builtin.proxy_caddy.settings import ProxySettings
from stagecraft.providers.proxy import (
    HostProxy,
    ProxyProvider,
    ProxyState,
    Route,
    RoutesResult,
    SwitchResult,
    TlsMode,
)
from stagecraft.runtime.ssh import HostProbe, SSHHost
from stagecraft.testing.fakes import FakeSSHHost

CONFIG = (
    "project: shop\n"
    "proxy: {provider: PROVIDER, providers: {caddy: {image: 'local/caddy:2', http_port: 8080,"
    " https_port: 8443, upstream_refresh: 0.5, email: ops@shop.test}EDGY}}\n"
    "environments:\n"
    "  staging:\n"
    "    hosts: {web-1: {address: 10.0.0.1, roles: [web]}}\n"
    "    roles: {web: [api]}\n"
    "    tls: internal\n"
)


def _loaded(tmp_path: Path, provider: str) -> LoadedConfig:
    edgy = ", edgy: {port: 9443}" if provider == "edgy" else ""
    text = CONFIG.replace("PROVIDER", provider).replace("EDGY", edgy)
    (tmp_path / "stagecraft.yml").write_text(text)
    return load_config(tmp_path / "stagecraft.yml")


def test_a_host_without_docker_fails_with_the_fix_and_changes_nothing() -> None:
    host = FakeSSHHost("web-1", probe=HostProbe("web-1", "x86_64", None, None, 0.0))
    edge = Edge(CaddyProxy(CaddyProxy.Config.model_validate({})), "acme")
    with pytest.raises(HostError) as info:
        bootstrap_host(host, "shop", "staging", edge)
    assert info.value.message.startswith("web-1: Docker is not installed")
    assert "apt-get install docker.io" in (info.value.hint or "")
    assert host.commands == []


def test_the_caddy_proxy_follows_its_block_and_the_env_tls(tmp_path: Path) -> None:
    """Bootstrap and deploy share these: a difference would replace the running proxy."""
    edge = edge_for(_loaded(tmp_path, "caddy"), "staging")
    on_host = edge.on(FakeSSHHost("web-1"))
    assert isinstance(on_host, CaddyHost)
    assert on_host.settings == ProxySettings(
        "local/caddy:2", "internal", "ops@shop.test", 8080, 8443, 0.5
    )
    assert edge.images == ("local/caddy:2",)
    assert edge.public_ports == (8080, 8443)


class EdgyConfig(ProviderConfig):
    port: int = 443


class RecordingHost(HostProxy):
    """A proxy that records what the core asks of it (the seam, not a proxy)."""

    calls: ClassVar[list[tuple[str, Any]]] = []

    def __init__(self, host: SSHHost, tls: TlsMode) -> None:
        self.host, self.tls = host, tls

    def ensure(self) -> ProxyState:
        self.calls.append(("ensure", (self.host.name, self.tls)))
        return ProxyState(self.host.name, "c1", "172.20.0.2", created=True)

    def apply_routes(self, project: str, env: str, routes: Sequence[Route]) -> RoutesResult:
        self.calls.append(("routes", (project, env, list(routes))))
        return RoutesResult(self.host.name, True, tuple(routes))

    def routes(self) -> dict[str, list[Route]]:
        return {}

    def switch(self, name: str, addresses: Sequence[str], *, timeout: float = 30.0) -> SwitchResult:
        return SwitchResult(self.host.name, name, tuple(addresses), (), 0.0)

    def drain(self, addresses: Sequence[str], *, timeout: float) -> float:
        return 0.0


class EdgyProxy(ProxyProvider):
    """A third-party proxy: its own config, its own host mechanics."""

    id = "edgy"
    Config = EdgyConfig

    def render_config(
        self, routes: Sequence[Route], *, tls: TlsMode, admin: str | None = None
    ) -> dict[str, Any]:
        return {"routes": [r.host for r in routes]}

    def on_host(self, host: SSHHost, *, tls: TlsMode) -> HostProxy:
        return RecordingHost(host, tls)

    def images(self) -> tuple[str, ...]:
        return ("edgy:1",)

    def public_ports(self) -> tuple[int, ...]:
        assert isinstance(self.config, EdgyConfig)
        return (self.config.port,)


@pytest.fixture
def edgy_installed() -> Iterator[None]:
    """The proxy registry as if a package registered ``edgy`` next to the built-in caddy."""
    saved = dict(base._REGISTRIES)
    group = base.GROUP_PREFIX + "proxy"
    eps = [
        EntryPoint("caddy", "stagecraft.providers.builtin.proxy_caddy:CaddyProxy", group),
        EntryPoint("edgy", f"{__name__}:EdgyProxy", group),
    ]
    base._REGISTRIES["proxy"] = Registry("proxy", eps=eps)
    RecordingHost.calls.clear()
    try:
        yield
    finally:
        base._REGISTRIES.clear()
        base._REGISTRIES.update(saved)


def test_a_third_party_proxy_is_the_one_bootstrap_drives(
    tmp_path: Path, edgy_installed: None
) -> None:
    edge = edge_for(_loaded(tmp_path, "edgy"), "staging")
    assert isinstance(edge.provider, EdgyProxy)
    assert edge.images == ("edgy:1",) and edge.public_ports == (9443,)
    host = FakeSSHHost("web-1")  # strict: any command not expected here fails the test
    host.expect("mkdir -p /var/lib/stagecraft/apps/shop/staging/releases")
    ready = bootstrap_host(host, "shop", "staging", edge)
    assert ready.proxy_created is True
    assert RecordingHost.calls == [("ensure", ("web-1", "internal"))]
    # Nothing Caddy-specific ran on the host: only the app's state directory.
    assert host.commands == ["mkdir -p /var/lib/stagecraft/apps/shop/staging/releases"]

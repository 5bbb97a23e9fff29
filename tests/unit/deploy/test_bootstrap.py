"""hosts bootstrap logic that needs no real host: proxy options and a host without Docker."""

from __future__ import annotations

from pathlib import Path

import pytest

from stagecraft.deploy.bootstrap import ProxyOptions, bootstrap_host
from stagecraft.errors import HostError
from stagecraft.runtime.ssh import HostProbe
from stagecraft.testing.fakes import FakeSSHHost


def test_a_host_without_docker_fails_with_the_fix_and_changes_nothing() -> None:
    host = FakeSSHHost("web-1", probe=HostProbe("web-1", "x86_64", None, None, 0.0))
    with pytest.raises(HostError) as info:
        bootstrap_host(host, "shop", "staging", ProxyOptions())
    assert info.value.message.startswith("web-1: Docker is not installed")
    assert "apt-get install docker.io" in (info.value.hint or "")
    assert host.commands == []


def test_proxy_options_are_the_keywords_of_ensure_proxy() -> None:
    import inspect

    from stagecraft.deploy.edge import ensure_proxy

    params = set(inspect.signature(ensure_proxy).parameters)
    assert set(ProxyOptions().kwargs()) <= params


def test_proxy_options_follow_the_caddy_block_and_the_env_tls(tmp_path: Path) -> None:
    """Bootstrap and deploy share these: a difference would replace the running proxy."""
    from stagecraft.config.loader import load_config
    from stagecraft.deploy.bootstrap import proxy_options

    (tmp_path / "stagecraft.yml").write_text(
        "project: shop\n"
        "proxy: {provider: caddy, providers: {caddy: {image: 'local/caddy:2', http_port: 8080,"
        " https_port: 8443, upstream_refresh: 0.5, email: ops@shop.test}}}\n"
        "environments:\n"
        "  staging:\n"
        "    hosts: {web-1: {address: 10.0.0.1, roles: [web]}}\n"
        "    roles: {web: [api]}\n"
        "    tls: internal\n"
    )
    loaded = load_config(tmp_path / "stagecraft.yml")
    assert proxy_options(loaded, "staging").kwargs() == {
        "image": "local/caddy:2",
        "tls_mode": "internal",
        "email": "ops@shop.test",
        "http_port": 8080,
        "https_port": 8443,
        "upstream_refresh": 0.5,
    }

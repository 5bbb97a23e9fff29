"""hosts bootstrap logic that needs no real host: proxy options and a host without Docker."""

from __future__ import annotations

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

"""The edge proxy on a real sandbox host: idempotent set-up, shared routes, lossless switches."""

from __future__ import annotations

import shlex
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from stagecraft.localhosts.sandbox import Sandbox
from stagecraft.providers.builtin.proxy_caddy import host as edge
from stagecraft.providers.proxy import Route, upstream_name
from stagecraft.runtime.ssh import SSHHost
from stagecraft.testing import images
from stagecraft.testing.load import NewConnectionLoad, WrkLoad

PORT = 18080
WEB = upstream_name("shop", "prod", "web")
BLOG = upstream_name("blog", "prod", "web")


def _upstream(host: SSHHost, image: str, name: str, body: str) -> str:
    host.docker("rm", "-f", name, check=False)
    script = f"mkdir -p /www && echo {body} > /www/index.html && exec httpd -f -p 80 -h /www"
    host.docker("run", "-d", "--init", "--name", name, "--network", edge.NETWORK, image,
                "sh", "-c", script)  # fmt: skip
    fmt = '{{(index .NetworkSettings.Networks "stagecraft").IPAddress}}'
    return host.docker("inspect", "--format", fmt, name).stdout.strip()


@pytest.fixture(scope="module")
def proxy_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One private sandbox host with the proxy and three upstreams (v1, v2, blog)."""
    from stagecraft.localhosts.sandbox import ssh_options_for
    from stagecraft.testing.pytest_plugin import _require_sandbox, start_sandbox

    _require_sandbox()
    sandbox: Sandbox = start_sandbox(1, tmp_path_factory.mktemp("edge"), "ed")
    try:
        target = sandbox.hosts[0]
        host = SSHHost(target.target(), ssh_options_for(sandbox))
        busybox = images.ensure_busybox_image(target.docker_host)
        caddy = images.ensure_caddy_image(target.docker_host)

        def ensure() -> edge.ProxyState:
            return edge.ensure_proxy(
                host, image=caddy, tls_mode="off", http_port=PORT, https_port=18443
            )

        first = ensure()
        addresses = {
            body: _upstream(host, busybox, f"ed-{body}", body) for body in ("v1", "v2", "blog")
        }
        yield {
            "host": host,
            "state": first,
            "ensure": ensure,
            "addresses": addresses,
            "url": f"http://{target.address}:{PORT}/",
        }
        host.close()
    finally:
        sandbox.stop()


pytestmark = [pytest.mark.integration, pytest.mark.sandbox]


def test_ensure_proxy_twice_is_one_container(proxy_host: dict[str, Any]) -> None:
    host: SSHHost = proxy_host["host"]
    again = proxy_host["ensure"]()
    assert again.container_id == proxy_host["state"].container_id and not again.created
    ids = host.docker("ps", "-q", "--filter", f"name=^{edge.PROXY_CONTAINER}$").stdout.split()
    assert len(ids) == 1
    restart = host.docker(
        "inspect", "--format", "{{.HostConfig.RestartPolicy.Name}}", edge.PROXY_CONTAINER
    )
    assert restart.stdout.strip() == "unless-stopped"


def _get(url: str, route_host: str) -> str:
    with NewConnectionLoad(url, host=route_host, workers=1, max_requests=1) as load:
        pass
    result = load.result
    return result.sequence[0] if result.sequence else f"failed: {result.errors}"


def _routes(proxy_host: dict[str, Any]) -> None:
    host: SSHHost = proxy_host["host"]
    edge.apply_routes(host, "shop", "prod", [Route("shop.test", WEB, 80)])
    edge.apply_routes(host, "blog", "prod", [Route("blog.test", BLOG, 80)])


def test_two_projects_routes_coexist_on_one_proxy(proxy_host: dict[str, Any]) -> None:
    host: SSHHost = proxy_host["host"]
    addresses = proxy_host["addresses"]
    _routes(proxy_host)
    assert not edge.apply_routes(host, "shop", "prod", [Route("shop.test", WEB, 80)]).changed
    edge.switch(host, WEB, [addresses["v1"]], proxy=proxy_host["state"])
    edge.switch(host, BLOG, [addresses["blog"]], proxy=proxy_host["state"])
    assert _get(proxy_host["url"], "shop.test") == "v1"
    assert _get(proxy_host["url"], "blog.test") == "blog"
    assert set(edge.read_routes(host)) == {"shop/prod", "blog/prod"}


def _switch_under(proxy_host: dict[str, Any], load: Callable[[], Any]) -> Any:
    """10 switches v1<->v2 during the load's first ~5 s, the last to v2, observed."""
    host: SSHHost = proxy_host["host"]
    addresses = proxy_host["addresses"]
    _routes(proxy_host)
    edge.switch(host, WEB, [addresses["v1"]], proxy=proxy_host["state"])
    with load() as running:
        time.sleep(0.5)
        for i in range(11):
            target = addresses["v2" if i % 2 == 0 else "v1"]
            edge.switch(host, WEB, [target], wait=False)
            time.sleep(0.4)
        edge.wait_switched(host, proxy_host["state"], WEB, [addresses["v2"]], timeout=9)
        time.sleep(0.5)
    return running


def test_switch_under_keep_alive_load_loses_nothing(proxy_host: dict[str, Any]) -> None:
    wrk = _switch_under(proxy_host, lambda: WrkLoad(
        proxy_host["url"], host="shop.test", duration=16, connections=20, threads=2
    ))  # fmt: skip
    result = wrk.result
    assert result.requests > 1000, result.output
    assert (result.socket_errors, result.non_2xx) == (0, 0), result.output
    assert set(result.first_bodies) == {"v1"} and set(result.last_bodies) == {"v2"}


def test_switch_with_new_connections_loses_nothing(proxy_host: dict[str, Any]) -> None:
    load = _switch_under(proxy_host, lambda: NewConnectionLoad(
        proxy_host["url"], host="shop.test", workers=4, max_seconds=30
    ))  # fmt: skip
    result = load.result
    assert result.failures == 0, result.errors
    assert result.requests > 500
    assert result.sequence[0] == "v1" and result.moved("v1", "v2")


def test_the_request_after_a_switch_goes_to_the_new_set(proxy_host: dict[str, Any]) -> None:
    """No resolver cache: the slot files are read at every request, so a switch is immediate."""
    host: SSHHost = proxy_host["host"]
    addresses = proxy_host["addresses"]
    _routes(proxy_host)
    for i in range(6):
        body = "v2" if i % 2 == 0 else "v1"
        edge.switch(host, WEB, [addresses[body]], wait=False)
        assert _get(proxy_host["url"], "shop.test") == body


def test_drain_ends_when_the_old_container_finished_its_request(
    proxy_host: dict[str, Any],
) -> None:
    host: SSHHost = proxy_host["host"]
    addresses = proxy_host["addresses"]
    _routes(proxy_host)
    slow = _slow_upstream(host, proxy_host)
    edge.switch(host, WEB, [slow], proxy=proxy_host["state"])
    results: list[str] = []
    request = threading.Thread(
        target=lambda: results.append(_get(proxy_host["url"] + "cgi-bin/slow", "shop.test"))
    )
    request.start()
    time.sleep(0.5)  # the request is on its way to the slow container
    edge.switch(host, WEB, [addresses["v2"]], proxy=proxy_host["state"])
    waited = edge.drain(host, proxy_host["state"], [slow], timeout=60)
    finished = bool(results)
    request.join(10)
    assert finished and results == ["slow done"], results
    assert waited < 30  # it ended with the request, not at the bound
    assert edge.drain(host, proxy_host["state"], [slow], timeout=60) < 30  # nothing in flight


def _slow_upstream(host: SSHHost, proxy_host: dict[str, Any]) -> str:
    """A busybox httpd whose /cgi-bin/slow answers after 3 s."""
    busybox = host.docker("inspect", "--format", "{{.Config.Image}}", "ed-v1").stdout.strip()
    host.docker("rm", "-f", "ed-slow", check=False)
    cgi = "#!/bin/sh\nsleep 3\nprintf 'Content-Type: text/plain\\r\\n\\r\\nslow done\\n'\n"
    script = (
        f"mkdir -p /www/cgi-bin && printf %s {shlex.quote(cgi)} > /www/cgi-bin/slow && "
        "chmod +x /www/cgi-bin/slow && "
        "echo slow > /www/index.html && exec httpd -f -p 80 -h /www"
    )
    host.docker("run", "-d", "--init", "--name", "ed-slow", "--network", edge.NETWORK,
                busybox, "sh", "-c", script)  # fmt: skip
    fmt = '{{(index .NetworkSettings.Networks "stagecraft").IPAddress}}'
    return host.docker("inspect", "--format", fmt, "ed-slow").stdout.strip()

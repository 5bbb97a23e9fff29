"""Measure how Caddy switching mechanisms behave under load (ADR 0005, section 5).

Starts a one-host sandbox (needs root), runs the edge proxy (``stagecraft-proxy``,
the test Caddy image) and two busybox httpd upstreams answering ``v1`` and
``v2`` on the ``stagecraft`` network, then switches the route's upstream
``--switches`` times (spread over all but the last 8 s) under load from the
root namespace through the proxy's published port, for three mechanisms:

- ``slots``: the edge module's slot files, replaced by rename and read by Caddy at
  every request (the chosen one, ADR 0015); each switch is confirmed through the
  proxy's probe and its confirmation time is printed (median, p99);
- ``alias``: a Docker network alias moved to the other container (connect the
  new one with the alias, disconnect the old one);
- ``reload``: a static upstream changed by loading a new config (``caddy reload``,
  i.e. the admin API's ``POST /load``) -- the known-bad baseline.

Each mechanism runs with wrk (keep-alive, ``-t2 -c20``) and with a Python client
opening a new connection per request. Prints one line per run: requests,
failures (socket errors + non-2xx) and the bodies seen first/last. Bounded:
about ``3 x 2 x (--seconds + 3)`` seconds plus sandbox start-up.

    .venv/bin/python bench/zero_downtime_switch.py [--seconds 12] [--switches 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from stagecraft.localhosts.sandbox import ssh_options_for
from stagecraft.providers.builtin.proxy_caddy import host as edge
from stagecraft.providers.builtin.proxy_caddy.settings import render_proxy_config
from stagecraft.providers.proxy import Route
from stagecraft.runtime.ssh import SSHHost
from stagecraft.testing import images
from stagecraft.testing.load import NewConnectionLoad, WrkLoad
from stagecraft.testing.pytest_plugin import start_sandbox

PORT = 18080
SLOTS_NAME = "web.bench.zd.internal"
ALIAS_NAME = "alias.bench.zd.internal"
ROUTES = [
    Route("slots.test", SLOTS_NAME, 80),
    Route("alias.test", ALIAS_NAME, 80),
    Route("reload.test", "reload.bench.zd.internal", 80),
]


def start_upstream(host: SSHHost, image: str, name: str, body: str) -> str:
    """A busybox httpd answering ``body``; returns its address on the stagecraft network."""
    host.docker("rm", "-f", name, check=False)
    script = f"mkdir -p /www && echo {body} > /www/index.html && exec httpd -f -p 80 -h /www"
    host.docker(
        "run", "-d", "--init", "--name", name, "--network", edge.NETWORK, image, "sh", "-c", script
    )
    fmt = '{{(index .NetworkSettings.Networks "stagecraft").IPAddress}}'
    return host.docker("inspect", "--format", fmt, name).stdout.strip()


def reload_with_static(host: SSHHost, settings: edge.ProxySettings, address: str) -> None:
    """Load a config whose reload.test route dials ``address`` statically (POST /load).

    Its alias.test route resolves ALIAS_NAME through Docker's DNS every second
    (``dynamic_upstreams``), as the proxy did before slot files.
    """
    config = render_proxy_config(settings, ROUTES, admin=edge.ADMIN, slot_dir=edge.SLOT_DIR)
    for route in config["apps"]["http"]["servers"]["stagecraft"]["routes"]:
        handler = route["handle"][0]
        if route.get("match") == [{"host": ["reload.test"]}]:
            handler["upstreams"] = [{"dial": f"{address}:80"}]
        if route.get("match") == [{"host": ["alias.test"]}]:
            handler.pop("upstreams")
            handler["dynamic_upstreams"] = {
                "source": "a",
                "name": ALIAS_NAME,
                "port": "80",
                "refresh": "1s",
            }
    host.write_file(f"{edge.PROXY_DIR}/bench.json", json.dumps(config).encode(), mode=0o644)
    host.docker(
        "exec",
        edge.PROXY_CONTAINER,
        "caddy",
        "reload",
        "--config",
        f"{edge.CONTAINER_DIR}/bench.json",
        "--address",
        edge.ADMIN,
    )


def measure(  # noqa: PLR0917 - a bench helper, called once per run
    label: str,
    url: str,
    route_host: str,
    do_switch: Callable[[int], None],
    seconds: float,
    switches: int,
    client: str,
    settle: Callable[[], None],
) -> dict[str, object]:
    """One run: load for ``seconds``, ``switches`` switches spread evenly; the figures."""
    interval = (seconds - 9) / switches  # the last 8 s: the final switch propagates
    started = time.monotonic()
    if client == "wrk":
        with WrkLoad(url, host=route_host, duration=seconds) as wrk:
            time.sleep(1)
            for i in range(switches):
                do_switch(i)
                time.sleep(max(0.0, started + 1 + (i + 1) * interval - time.monotonic()))
            settle()
        assert wrk.result is not None
        res = wrk.result
        return {
            "mechanism": label,
            "client": "wrk -t2 -c20 (keep-alive)",
            "requests": res.requests,
            "failures": res.failures,
            "socket_errors": res.socket_errors,
            "non_2xx": res.non_2xx,
            "first": sorted(set(res.first_bodies)),
            "last": sorted(set(res.last_bodies)),
        }
    with NewConnectionLoad(url, host=route_host, workers=4, max_seconds=seconds + 5) as load:
        time.sleep(1)
        for i in range(switches):
            do_switch(i)
            time.sleep(max(0.0, started + 1 + (i + 1) * interval - time.monotonic()))
        settle()
        time.sleep(1)
    r = load.result
    return {
        "mechanism": label,
        "client": "new connection per request (4 threads)",
        "requests": r.requests,
        "failures": r.failures,
        "errors": r.errors[:3],
        "bodies": dict(r.bodies),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--switches", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stagecraft-zd-") as tmp:
        sandbox = start_sandbox(1, Path(tmp), "zd")
        try:
            return run_bench(sandbox, args.seconds, args.switches)
        finally:
            sandbox.stop()


def run_bench(sandbox: object, seconds: float, switches: int) -> int:
    from stagecraft.localhosts.sandbox import Sandbox

    assert isinstance(sandbox, Sandbox)
    target = sandbox.hosts[0]
    host = SSHHost(target.target(), ssh_options_for(sandbox))
    busybox = images.ensure_busybox_image(target.docker_host)
    caddy = images.ensure_caddy_image(target.docker_host)
    state = edge.ensure_proxy(host, image=caddy, tls_mode="off", http_port=PORT, https_port=18443)
    settings = edge.read_settings(host)
    edge.apply_routes(host, "zd", "bench", ROUTES)
    v1 = start_upstream(host, busybox, "zd-v1", "v1")
    v2 = start_upstream(host, busybox, "zd-v2", "v2")
    addresses = [v1, v2]
    names = ["zd-v1", "zd-v2"]
    url = f"http://{target.address}:{PORT}/"

    confirmed: list[float] = []

    def slots_switch(i: int) -> None:
        result = edge.switch(host, SLOTS_NAME, [addresses[(i + 1) % 2]], proxy=state)
        confirmed.append(result.seconds)

    def slots_setup() -> None:
        edge.switch(host, SLOTS_NAME, [addresses[0]], proxy=state)

    def reload_setup() -> None:
        reload_with_static(host, settings, addresses[0])

    def alias_setup() -> None:
        reload_with_static(host, settings, addresses[0])
        host.docker("network", "disconnect", edge.NETWORK, "zd-v1")
        host.docker("network", "connect", "--alias", ALIAS_NAME, edge.NETWORK, "zd-v1")

    def alias_switch(i: int) -> None:
        new, old = names[(i + 1) % 2], names[i % 2]
        host.docker("network", "disconnect", edge.NETWORK, new, check=False)
        host.docker("network", "connect", "--alias", ALIAS_NAME, edge.NETWORK, new)
        host.docker("network", "disconnect", edge.NETWORK, old)

    def reload_switch(i: int) -> None:
        reload_with_static(host, settings, addresses[(i + 1) % 2])

    results = []
    for label, route_host, setup, fn in (
        ("slots", "slots.test", slots_setup, slots_switch),
        ("alias", "alias.test", alias_setup, alias_switch),
        (
            "reload",
            "reload.test",
            reload_setup,
            reload_switch,
        ),
    ):
        for client in ("wrk", "new-connection"):
            for name in names:  # both upstreams back on the network, without the alias
                host.docker("network", "disconnect", edge.NETWORK, name, check=False)
                host.docker("network", "connect", edge.NETWORK, name, check=False)
            v1, v2 = (
                host.docker(
                    "inspect",
                    "--format",
                    '{{(index .NetworkSettings.Networks "stagecraft").IPAddress}}',
                    n,
                ).stdout.strip()
                for n in names
            )
            addresses[:] = [v1, v2]
            setup()
            time.sleep(2)  # let the proxy settle on v1
            last = addresses[switches % 2]  # where the last switch points

            def settle(label: str = label, last: str = last) -> None:
                if label == "slots":  # observed through the proxy's probe server
                    edge.wait_switched(host, state, SLOTS_NAME, [last], timeout=8)

            figures = measure(label, url, route_host, fn, seconds, switches, client, settle)
            print(json.dumps(figures), flush=True)
            results.append(figures)
    for name in names:
        host.docker("rm", "-f", name, check=False)
    host.docker("rm", "-f", edge.PROXY_CONTAINER, check=False)
    host.close()
    ordered = sorted(confirmed)
    if ordered:
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        print(
            f"slots: {len(ordered)} switches confirmed through the proxy, "
            f"median {statistics.median(ordered) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms",
            flush=True,
        )
    return 0 if all(r["failures"] == 0 for r in results if r["mechanism"] == "slots") else 1


if __name__ == "__main__":
    sys.exit(main())

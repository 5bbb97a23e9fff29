"""The dev proxy config: goldens, accepted by the real caddy binary, and its port checks."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from stagecraft.dev.certs import CA, ensure_leaf
from stagecraft.dev.model import DevProcessError
from stagecraft.dev.plan import DevOptions, ProxyRoute, build_plan
from stagecraft.dev.proxy import DevProxy, render_dev_config
from stagecraft.providers.builtin.proxy_caddy import caddy_binary

ROUTES = (
    ProxyRoute(
        "app", "app.shop.localhost", "https://app.shop.localhost", "frontend", None, None, 5173
    ),
    ProxyRoute(
        "api", "api.shop.localhost", "https://api.shop.localhost", "backend", None, None, 4000
    ),
    ProxyRoute(
        "mail",
        "mail.shop.localhost",
        "https://mail.shop.localhost",
        "service",
        "mailpit",
        8025,
        32770,
    ),
)
CASES = {
    "https-default-ports": {"https": True, "https_port": 443, "http_port": 80},
    "https-custom-ports": {"https": True, "https_port": 8443, "http_port": 8080},
    "http-only": {"https": False, "https_port": 443, "http_port": 8080},
}


def render(case: str, cert: Path | None = Path("/p/.stagecraft/dev/certs/dev.pem")) -> dict:  # type: ignore[type-arg]
    flags = CASES[case]
    return render_dev_config(
        ROUTES,
        https=bool(flags["https"]),
        https_port=int(flags["https_port"]),
        http_port=int(flags["http_port"]),
        admin="127.0.0.1:2999",
        cert=cert,
        key=cert.with_name("dev-key.pem") if cert else None,
        storage=Path("/p/.stagecraft/dev/caddy"),
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_golden(case: str, snapshot: SnapshotAssertion) -> None:
    assert render(case) == snapshot(extension_class=JSONSnapshotExtension)


def test_https_config_uses_the_leaf_not_caddys_ca() -> None:
    config = render("https-default-ports")
    assert "automation" not in json.dumps(config["apps"]["tls"])
    server = config["apps"]["http"]["servers"]["stagecraft"]
    assert server["automatic_https"] == {"disable": True}
    upstreams = [r["handle"][0].get("upstreams") for r in server["routes"][:-1]]
    assert upstreams == [
        [{"dial": "127.0.0.1:4000"}],
        [{"dial": "127.0.0.1:5173"}],
        [{"dial": "127.0.0.1:32770"}],
    ]


@pytest.mark.parametrize("case", sorted(CASES))
def test_real_caddy_accepts_the_config(case: str, own_ca: CA, tmp_path: Path) -> None:
    leaf = ensure_leaf(own_ca, [r.hostname for r in ROUTES], tmp_path / "certs")
    config = render(case, leaf.cert_path)
    config["storage"]["root"] = str(tmp_path / "caddy")
    path = tmp_path / "caddy.json"
    path.write_text(json.dumps(config))
    result = subprocess.run(
        [str(caddy_binary()), "validate", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr


def test_taken_port_names_the_proxy_and_the_flag(tmp_path: Path) -> None:
    from test_dev_session_plan import project

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        plan = build_plan(project(tmp_path), DevOptions(https_port=port, http_port=port + 1))
        with pytest.raises(DevProcessError, match=rf"^proxy: port {port} is already in use") as err:
            DevProxy(plan, None, admin_port=port + 2).check_ports()
    assert err.value.hint is not None and "--https-port" in err.value.hint


def test_reload_switches_the_running_proxy_atomically(own_ca: CA, tmp_path: Path) -> None:
    """A real caddy: reload adds a route; a config caddy rejects leaves the old one serving."""
    import time
    from dataclasses import replace

    from test_dev_session_plan import project

    from stagecraft.dev import proctree
    from stagecraft.dev.proxy import free_port

    plan = build_plan(project(tmp_path), DevOptions(https_port=free_port(), http_port=free_port()))
    leaf = ensure_leaf(own_ca, plan.hostnames, tmp_path / "certs")
    proxy = DevProxy(plan, leaf, admin_port=free_port())
    proxy.write_config()
    spec = proxy.process_spec()
    caddy = subprocess.Popen(
        spec.argv,
        env={**spec.env, "PATH": "/usr/bin:/bin"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        proxy.wait_serving(15)
        detail = served_routes(proxy.admin)
        assert "api.shop.localhost" in detail and "mail.shop.localhost" not in detail
        mail = next(r for r in plan.routes if r.name == "mail")  # its port is known once it runs
        routes = [*(r for r in plan.routes if r.name != "mail"), replace(mail, port=32770)]
        proxy.reload(routes)
        detail = served_routes(proxy.admin)
        assert "mail.shop.localhost" in detail and "127.0.0.1:32770" in detail
        assert "127.0.0.1:32770" in proxy.config_path.read_text()
        missing = replace(leaf, cert_path=tmp_path / "missing.pem")
        rejected = DevProxy(plan, missing, admin_port=proxy.admin_port)
        with pytest.raises(DevProcessError, match=r"^proxy: reloading the config failed"):
            rejected.reload(plan.routes)  # caddy cannot load the certificate: keeps the old one
        detail = served_routes(proxy.admin)
        assert "127.0.0.1:32770" in detail  # the reloaded config still serves
    finally:
        proctree.signal_group(caddy.pid, signal.SIGKILL)
        caddy.wait(timeout=10)
        deadline = time.monotonic() + 5
        while proctree.port_in_use(proxy.admin_port) and time.monotonic() < deadline:
            time.sleep(0.05)


def served_routes(admin: str) -> str:
    """The routes the running caddy serves, as its admin API reports them."""
    import urllib.request

    url = f"http://{admin}/config/apps/http/servers/stagecraft/routes"
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())

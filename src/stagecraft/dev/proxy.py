"""The dev proxy: Caddy as a host process, routing the dev hostnames over HTTPS.

:func:`render_dev_config` starts from the ``caddy`` provider's config
(:meth:`~stagecraft.providers.builtin.proxy_caddy.CaddyProxy.render_config`:
one route per hostname, HTTP->HTTPS redirect, WebSocket upgrades pass) and
makes it a dev proxy:

- upstreams are fixed loopback ports (``127.0.0.1:5173``), not DNS names;
- TLS uses the leaf certificate issued by the dev CA
  (:mod:`stagecraft.dev.certs`), loaded from files; Caddy's own internal CA
  and automatic certificates are off, so a client that trusts the dev CA
  verifies the proxy without ``-k``;
- the admin API listens on a loopback port, Caddy's storage and logs stay in
  ``.stagecraft/dev``, and only warnings are logged (merged into the dev log).

The proxy runs under the supervisor like the dev servers
(:meth:`DevProxy.process_spec`); :meth:`DevProxy.reload` replaces its
config atomically through the admin API (``POST /load``: Caddy switches to the
new config only if it loads, else keeps the old one).

Example::

    proxy = DevProxy(plan, leaf)
    proxy.write_config()
    specs = [proxy.process_spec(), *dev_server_specs]
    ... supervisor.start(); proxy.wait_serving(10)
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stagecraft.dev.model import DevProcessError, ProcessSpec
from stagecraft.dev.plan import LOOPBACK, DevPlan, ProxyRoute
from stagecraft.providers.backend import Readiness

if TYPE_CHECKING:
    from stagecraft.dev.certs import LeafCert

CERT_TAG = "stagecraft-dev"
PROCESS_NAME = "proxy"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def render_dev_config(
    routes: Sequence[ProxyRoute],
    *,
    https: bool,
    https_port: int,
    http_port: int,
    admin: str,
    cert: Path | None,
    key: Path | None,
    storage: Path,
) -> dict[str, Any]:
    """Caddy's JSON config for the dev proxy (deterministic for the same inputs)."""
    from stagecraft.providers.base import registry
    from stagecraft.providers.proxy import Route

    caddy = registry("proxy").create("caddy", {"https_port": https_port, "http_port": http_port})
    provider_routes = [Route(r.hostname, LOOPBACK, r.port) for r in routes if r.port is not None]
    config: dict[str, Any] = caddy.render_config(
        provider_routes, tls="internal" if https else "off", admin=admin
    )
    http_app = config["apps"]["http"]
    http_app["grace_period"] = "1s"
    for server in http_app["servers"].values():
        for route in server["routes"]:
            for handler in route.get("handle", []):
                _static_upstream(handler)
    if https:
        if cert is None or key is None:
            raise ValueError("an HTTPS dev proxy needs the leaf certificate and key")
        main = http_app["servers"]["stagecraft"]
        main["automatic_https"] = {"disable": True}
        main["tls_connection_policies"] = [{"certificate_selection": {"any_tag": [CERT_TAG]}}]
        config["apps"]["tls"] = {
            "certificates": {
                "load_files": [{"certificate": str(cert), "key": str(key), "tags": [CERT_TAG]}]
            }
        }
        redirect = http_app["servers"].get("stagecraft_redirect")
        if redirect is not None:
            redirect["automatic_https"] = {"disable": True}
    for name, server in http_app["servers"].items():
        if not https or name != "stagecraft":
            server["protocols"] = ["h1"]  # plain HTTP: no h2/h3 (Caddy warns about them)
    config["storage"] = {"module": "file_system", "root": str(storage)}
    config["logging"] = {"logs": {"default": {"level": "WARN"}}}
    return config


def _static_upstream(handler: dict[str, Any]) -> None:
    """Replace a DNS-resolved upstream by its fixed address (dev upstreams are loopback ports)."""
    dynamic = handler.pop("dynamic_upstreams", None)
    if dynamic is not None:
        handler["upstreams"] = [{"dial": f"{dynamic['name']}:{dynamic['port']}"}]


class DevProxy:
    """The Caddy process of a dev session: its config file, process spec and readiness."""

    def __init__(
        self,
        plan: DevPlan,
        leaf: LeafCert | None,
        *,
        caddy: Path | None = None,
        admin_port: int | None = None,
    ) -> None:
        self.plan = plan
        self.leaf = leaf
        self._caddy = caddy
        self.admin_port = admin_port or plan.options.admin_port or free_port()

    @property
    def admin(self) -> str:
        return f"{LOOPBACK}:{self.admin_port}"

    @property
    def config_path(self) -> Path:
        return self.plan.state_dir / "caddy.json"

    @property
    def listen_port(self) -> int:
        """The port the routes are served on (HTTPS, or HTTP when HTTPS is off)."""
        opts = self.plan.options
        return opts.https_port if self.plan.https else opts.http_port

    def render(self, routes: Sequence[ProxyRoute] | None = None) -> dict[str, Any]:
        """The config for ``routes`` (default: the plan's)."""
        opts = self.plan.options
        return render_dev_config(
            self.plan.proxy_routes if routes is None else routes,
            https=self.plan.https,
            https_port=opts.https_port,
            http_port=opts.http_port,
            admin=self.admin,
            cert=self.leaf.cert_path if self.leaf else None,
            key=self.leaf.key_path if self.leaf else None,
            storage=self.plan.state_dir / "caddy",
        )

    def write_config(self) -> Path:
        """Write the config file Caddy starts with."""
        path = self.config_path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.render(), indent=2, sort_keys=True) + "\n")
        tmp.replace(path)
        return path

    def caddy(self) -> Path:
        """The caddy binary (PrerequisiteMissing if it is not installed)."""
        if self._caddy is None:
            from stagecraft.providers.builtin.proxy_caddy import caddy_binary

            self._caddy = caddy_binary()
        return self._caddy

    def process_spec(self) -> ProcessSpec:
        """The supervised ``caddy run`` process (its port is checked to be free before start)."""
        home = self.plan.state_dir / "caddy"
        return ProcessSpec(
            name=PROCESS_NAME,
            argv=(str(self.caddy()), "run", "--config", str(self.config_path)),
            cwd=self.plan.state_dir,
            env={"XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config")},
            port=self.listen_port,
            readiness=Readiness(),
            stop_timeout=5.0,
        )

    def check_ports(self) -> None:
        """DevProcessError naming the proxy when one of its ports is taken."""
        from stagecraft.dev import proctree

        opts = self.plan.options
        ports = [opts.http_port, self.admin_port]
        if self.plan.https:
            ports.insert(0, opts.https_port)
        for port in ports:
            if proctree.port_in_use(port):
                holders = proctree.port_holders(port)
                by = f" by {', '.join(h.describe() for h in holders)}" if holders else ""
                flag = "--https-port" if port == opts.https_port else "--http-port"
                raise DevProcessError(
                    PROCESS_NAME,
                    f"port {port} is already in use{by}",
                    hint=f"stop what listens on port {port}, or pass {flag} with a free port",
                )
            if not _may_bind(port):
                raise DevProcessError(
                    PROCESS_NAME,
                    f"port {port} needs root (or CAP_NET_BIND_SERVICE)",
                    hint="pass --https-port 8443 --http-port 8080 "
                    "(URLs then carry the port), or run as root",
                )

    def wait_serving(self, timeout: float) -> None:
        """Block until the admin API answers and the route port accepts connections."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            ok, last = self._probe()
            if ok:
                return
            time.sleep(0.1)
        raise DevProcessError(
            PROCESS_NAME,
            f"not serving after {timeout:g}s ({last})",
            hint=f"see the proxy's output above; its config is {self.config_path}",
        )

    def _probe(self) -> tuple[bool, str]:
        status, detail = admin_request("GET", self.admin, "/config/")
        if status != 200:
            return False, f"admin API: {detail}"
        try:
            with socket.create_connection((LOOPBACK, self.listen_port), timeout=1):
                return True, "serving"
        except OSError as exc:
            return False, f"port {self.listen_port}: {exc.strerror or exc}"

    def reload(self, routes: Sequence[ProxyRoute]) -> None:
        """Serve ``routes`` now, atomically (``POST /load``; the old config stays on error)."""
        config = self.render(routes)
        status, detail = admin_request("POST", self.admin, "/load", json.dumps(config).encode())
        if status != 200:
            raise DevProcessError(
                PROCESS_NAME,
                f"reloading the config failed: {detail}",
                hint="the previous config is still active",
            )
        self.config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def admin_request(
    method: str, admin: str, path: str, body: bytes | None = None, timeout: float = 5.0
) -> tuple[int, str]:
    """``(status, detail)`` of a request to Caddy's admin API (status 0: no answer)."""
    host, _, port = admin.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode(errors="replace").strip()
        return response.status, f"HTTP {response.status} {text[:200]}".strip()
    except (OSError, http.client.HTTPException) as exc:
        return 0, f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()


def _may_bind(port: int) -> bool:
    """Whether this process may listen on ``port`` (root, or above the privileged floor)."""
    import os

    if os.geteuid() == 0:
        return True
    try:
        floor = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text().strip())
    except (OSError, ValueError):
        floor = 1024
    return port >= floor

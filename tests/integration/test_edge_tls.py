"""The edge proxy's TLS modes (``acme``, ``internal``, ``off``) on a real sandbox host.

Each test gets a fresh one-host sandbox (its own dockerd and sshd, torn down
after the test), the test Caddy image copied onto it, the proxy started by
``proxy_caddy.host.ensure_proxy`` on the default ports 80/443, and one
route, ``app.tls.test``, to a busybox ``httpd`` upstream on the ``stagecraft``
network (switched to it like a deploy does). Requests go from this process
straight to the host's address, with the route's hostname as ``Host`` and as
the TLS server name (SNI).
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from stagecraft.localhosts.sandbox import Sandbox
from stagecraft.providers.builtin.proxy_caddy import host as edge
from stagecraft.providers.proxy import Route, TlsMode, upstream_name
from stagecraft.runtime.ssh import SSHHost
from stagecraft.testing import images

pytestmark = [pytest.mark.integration, pytest.mark.sandbox]

T = TypeVar("T")

PROJECT = "edgetls"
ENV = "prod"
HOSTNAME = "app.tls.test"  # .test: no public CA would ever issue for it, even with internet
EMAIL = "ops@tls.test"
HTTP_PORT = 80
HTTPS_PORT = 443
ROOT_CRT = "/data/caddy/pki/authorities/local/root.crt"
ADMIN_CONFIG_URL = f"http://{edge.ADMIN}/config/"
TRANSIENT = (OSError, ssl.SSLError, http.client.HTTPException)


@dataclass
class EdgeHost:
    """A fresh sandbox host with the test images on its daemon."""

    host: SSHHost
    address: str
    caddy: str
    busybox: str

    def proxy(self, tls_mode: TlsMode, email: str | None = None) -> edge.ProxyState:
        """Ensure the host's proxy runs with ``tls_mode`` on ports 80/443."""
        return edge.ensure_proxy(
            self.host,
            image=self.caddy,
            tls_mode=tls_mode,
            email=email,
            http_port=HTTP_PORT,
            https_port=HTTPS_PORT,
        )

    def serve(self, state: edge.ProxyState, body: str) -> None:
        """Route HOSTNAME to a new busybox upstream answering ``body`` and switch to it."""
        container = f"{PROJECT}-web"
        self.host.docker("rm", "-f", container, check=False)
        script = f"mkdir -p /www && echo {body} > /www/index.html && exec httpd -f -p 80 -h /www"
        self.host.docker("run", "-d", "--init", "--name", container, "--network", edge.NETWORK,
                         self.busybox, "sh", "-c", script)  # fmt: skip
        fmt = f'{{{{(index .NetworkSettings.Networks "{edge.NETWORK}").IPAddress}}}}'
        address = self.host.docker("inspect", "--format", fmt, container).stdout.strip()
        name = upstream_name(PROJECT, ENV, "web")
        edge.apply_routes(self.host, PROJECT, ENV, [Route(HOSTNAME, name, 80)])
        edge.switch(self.host, name, [address], proxy=state)


@pytest.fixture
def edge_host(sandbox_factory: Callable[[int], Sandbox]) -> Iterator[EdgeHost]:
    """One new sandbox host with the busybox and Caddy test images copied onto it."""
    sandbox = sandbox_factory(1)
    target = sandbox.hosts[0]
    busybox = images.ensure_busybox_image()
    caddy = images.ensure_caddy_image()
    for tag in (busybox, caddy):
        images.copy_image(tag, None, target.docker_host)
    host = sandbox.ssh_host(target.name)
    try:
        yield EdgeHost(host, target.address, caddy, busybox)
    finally:
        host.close()


# -- helpers ---------------------------------------------------------------------------


def poll(attempt: Callable[[], T | None], timeout: float, what: str) -> T:
    """Call ``attempt`` until it returns a value (transient network errors retry)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = attempt()
            if value is not None:
                return value
        except TRANSIENT as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:g}s (last error: {last!r})")
        time.sleep(0.2)


def http_get(address: str, path: str = "/") -> tuple[int, dict[str, str], str]:
    """Plain HTTP GET of ``path`` on HOSTNAME at the host: status, headers, body."""
    conn = http.client.HTTPConnection(address, HTTP_PORT, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": HOSTNAME, "Connection": "close"})
        response = conn.getresponse()
        body = response.read().decode()
        return response.status, dict(response.getheaders()), body
    finally:
        conn.close()


def https_get(address: str, context: ssl.SSLContext) -> tuple[int, str, dict[str, Any]]:
    """HTTPS GET / with SNI and Host = HOSTNAME: status, body and the verified peer cert."""
    request = f"GET / HTTP/1.1\r\nHost: {HOSTNAME}\r\nConnection: close\r\n\r\n"
    with (
        socket.create_connection((address, HTTPS_PORT), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=HOSTNAME) as tls,
    ):
        cert = tls.getpeercert()
        tls.sendall(request.encode())
        response = http.client.HTTPResponse(tls)
        response.begin()
        body = response.read().decode()
    assert cert is not None
    return response.status, body, dict(cert)


def trusting(root_pem: str) -> ssl.SSLContext:
    """A client context that trusts only ``root_pem`` and checks the hostname."""
    context = ssl.create_default_context(cadata=root_pem)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    return context


def local_ca_root(host: SSHHost) -> str | None:
    """The root certificate of Caddy's internal CA, read inside the proxy container."""
    found = host.docker("exec", edge.PROXY_CONTAINER, "cat", ROOT_CRT, check=False)
    return found.stdout if "BEGIN CERTIFICATE" in found.stdout else None


def admin_config(host: SSHHost) -> dict[str, Any]:
    """The config Caddy runs, from its admin API (loopback inside the container)."""
    found = host.docker("exec", edge.PROXY_CONTAINER, "wget", "-qO-", ADMIN_CONFIG_URL)
    config: dict[str, Any] = json.loads(found.stdout)
    return config


def proxy_log(host: SSHHost) -> list[dict[str, Any]]:
    """The proxy container's JSON log entries."""
    output = host.docker("logs", edge.PROXY_CONTAINER).output
    entries = []
    for line in output.splitlines():
        if line.startswith("{"):
            entries.append(json.loads(line))
    return entries


def listening_ports(host: SSHHost) -> set[int]:
    """TCP ports something listens on inside the proxy container."""
    table = host.docker("exec", edge.PROXY_CONTAINER, "netstat", "-ltn").stdout
    ports = set()
    for line in table.splitlines():
        fields = line.split()
        if fields and fields[0].startswith("tcp") and fields[-1] == "LISTEN":
            ports.add(int(fields[3].rsplit(":", 1)[1]))
    return ports


def container_running(host: SSHHost) -> bool:
    state = host.docker("inspect", "--format", "{{.State.Running}}", edge.PROXY_CONTAINER)
    return state.stdout.strip() == "true"


def assert_redirects_to_https(address: str) -> None:
    """Plain HTTP on HOSTNAME answers Caddy's 308 to the same URL on https (port 443)."""
    status, headers, _ = http_get(address, "/some/page?q=1")
    assert status == 308, headers
    assert headers["Location"] == f"https://{HOSTNAME}/some/page?q=1"


def serves_verified(address: str, root: str) -> tuple[int, str, dict[str, Any]] | None:
    """The HTTPS answer once the certificate chain verifies against ``root``."""
    return https_get(address, trusting(root))


# -- tls: internal ---------------------------------------------------------------------


def test_internal_serves_https_with_a_certificate_from_caddys_local_ca(
    edge_host: EdgeHost,
) -> None:
    state = edge_host.proxy("internal")
    edge_host.serve(state, "internal-ok")
    root = poll(lambda: local_ca_root(edge_host.host), 30, "Caddy's local CA root")

    # Issuance is asynchronous: the handshake fails until the leaf certificate exists.
    status, body, cert = poll(
        lambda: serves_verified(edge_host.address, root), 30, "a verified HTTPS answer"
    )
    assert (status, body) == (200, "internal-ok\n")
    assert cert["subjectAltName"] == (("DNS", HOSTNAME),)
    issuer = dict(rdn[0] for rdn in cert["issuer"])
    assert issuer["commonName"].startswith("Caddy Local Authority"), issuer

    # The check above means something: without that root the chain does not verify.
    with pytest.raises(ssl.SSLCertVerificationError):
        https_get(edge_host.address, ssl.create_default_context())
    assert_redirects_to_https(edge_host.address)
    # Caddy advertises HTTP/3 (Alt-Svc h3), so the HTTPS port is published for UDP too.
    published = edge_host.host.docker("port", edge.PROXY_CONTAINER).stdout
    assert "443/udp" in published and "443/tcp" in published, published


def test_internal_ca_does_not_try_to_install_its_root_in_the_container_trust_store(
    edge_host: EdgeHost,
) -> None:
    """The proxy's CA is trusted by whoever reads its root; the container has no trust store.

    Caddy's ``pki`` app installs each CA's root into the system trust store unless
    ``install_trust`` is false; inside the proxy container that fails and logs an
    error ("failed to install root certificate") every time the CA is provisioned.
    """
    state = edge_host.proxy("internal")
    edge_host.serve(state, "internal-ok")
    root = poll(lambda: local_ca_root(edge_host.host), 30, "Caddy's local CA root")
    poll(lambda: serves_verified(edge_host.address, root), 30, "a verified HTTPS answer")
    pki_errors = [
        entry
        for entry in proxy_log(edge_host.host)
        if entry.get("level") == "error" and str(entry.get("logger", "")).startswith("pki")
    ]
    assert pki_errors == []


# -- tls: acme -------------------------------------------------------------------------


def test_acme_asks_for_the_routes_certificate_and_the_proxy_stays_up_without_internet(
    edge_host: EdgeHost,
) -> None:
    """Caddy runs the config with an ACME issuer for the route's host and the email.

    Obtaining the certificate needs Let's Encrypt over the internet, which these
    machines (and sandbox hosts, which only reach each other) do not have; so the
    test waits for Caddy's first failed attempt and shows that the proxy keeps
    running, keeps its config and keeps redirecting HTTP to HTTPS meanwhile, and
    that it serves no certificate at all for the host rather than a stand-in one.
    """
    state = edge_host.proxy("acme", email=EMAIL)
    edge_host.serve(state, "acme-ok")

    loaded = admin_config(edge_host.host)
    rendered = edge_host.host.read_file(edge.PROXY_DIR + "/caddy.json")
    assert rendered is not None and loaded == json.loads(rendered)
    policies = loaded["apps"]["tls"]["automation"]["policies"]
    assert policies == [{"subjects": [HOSTNAME], "issuers": [{"module": "acme", "email": EMAIL}]}]
    assert_redirects_to_https(edge_host.address)

    def failed_attempt() -> dict[str, Any] | None:
        for entry in proxy_log(edge_host.host):
            if entry.get("msg") == "could not get certificate from issuer":
                return entry
        return None

    failure = poll(failed_attempt, 120, "Caddy's first failed ACME attempt")
    assert failure["identifier"] == HOSTNAME
    assert "acme-v02.api.letsencrypt.org" in failure["issuer"]

    assert container_running(edge_host.host)
    assert admin_config(edge_host.host) == loaded
    assert_redirects_to_https(edge_host.address)
    no_verify = ssl.create_default_context()
    no_verify.check_hostname = False
    no_verify.verify_mode = ssl.CERT_NONE
    with pytest.raises(ssl.SSLError, match="INTERNAL_ERROR"):
        https_get(edge_host.address, no_verify)


# -- tls: off --------------------------------------------------------------------------


def test_off_serves_plain_http_and_nothing_listens_for_tls(edge_host: EdgeHost) -> None:
    state = edge_host.proxy("off")
    edge_host.serve(state, "off-ok")

    status, _, body = http_get(edge_host.address)
    assert (status, body) == (200, "off-ok\n")
    ports = listening_ports(edge_host.host)
    assert HTTP_PORT in ports and HTTPS_PORT not in ports, ports
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((edge_host.address, HTTPS_PORT), timeout=10).close()
    assert "tls" not in admin_config(edge_host.host)["apps"]


# -- changing the mode -----------------------------------------------------------------


def test_changing_the_tls_mode_reloads_the_same_container_and_keeps_the_ca(
    edge_host: EdgeHost,
) -> None:
    first = edge_host.proxy("internal")
    edge_host.serve(first, "switch-ok")
    root = poll(lambda: local_ca_root(edge_host.host), 30, "Caddy's local CA root")
    poll(lambda: serves_verified(edge_host.address, root), 30, "a verified HTTPS answer")

    off = edge_host.proxy("off")
    assert (off.container_id, off.created) == (first.container_id, False)
    assert http_get(edge_host.address)[0::2] == (200, "switch-ok\n")
    assert HTTPS_PORT not in listening_ports(edge_host.host)

    again = edge_host.proxy("internal")
    assert (again.container_id, again.created) == (first.container_id, False)
    status, body, _ = poll(
        lambda: serves_verified(edge_host.address, root), 30, "HTTPS again, same CA root"
    )
    assert (status, body) == (200, "switch-ok\n")
    assert local_ca_root(edge_host.host) == root
    assert_redirects_to_https(edge_host.address)

"""The caddy proxy: rendered JSON goldens, accepted by the real caddy, serving for real."""

from __future__ import annotations

import json
import os
import socket
import socketserver
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion

from stagecraft.providers import registry
from stagecraft.providers.builtin.proxy_caddy import CaddyProxy, caddy_binary
from stagecraft.providers.proxy import Route, RouteError, TlsMode, sort_routes


def _caddy(raw: dict[str, Any] | None = None) -> CaddyProxy:
    proxy = registry("proxy").create("caddy", raw or {})
    assert isinstance(proxy, CaddyProxy)
    return proxy


@dataclass(frozen=True)
class Case:
    name: str
    routes: tuple[Route, ...]
    tls: TlsMode
    config: dict[str, Any]
    admin: str | None = None


CASES = [
    Case(
        "staging-acme",
        (
            Route("staging.shop.com", "shop-staging-web", 80),
            Route("api.staging.shop.com", "shop-staging-api", 4000),
        ),
        "acme",
        {"email": "ops@shop.com"},
    ),
    Case(
        "dev-internal",
        (
            Route("app.shop.localhost", "127.0.0.1", 5173),
            Route("api.shop.localhost", "127.0.0.1", 4000),
            Route("mail.shop.localhost", "localhost", 8025),
        ),
        "internal",
        {},
        admin="127.0.0.1:2999",
    ),
    Case(
        "paths-plain-http",
        (
            Route("shop.example", "shop-web", 80),
            Route("shop.example", "shop-api", 4000, "/api/"),
            Route("shop.example", "shop-admin", 8000, "/api/admin"),
        ),
        "off",
        {"http_port": 8080, "https_port": 8443, "upstream_refresh": 0.25},
    ),
    Case(
        "custom-https-port",
        (Route("*.preview.shop.dev", "shop-preview", 3000),),
        "internal",
        {"http_port": 8080, "https_port": 8443},
    ),
    Case("no-routes", (), "acme", {}),
]


def _render(case: Case) -> dict[str, Any]:
    return _caddy(case.config).render_config(list(case.routes), tls=case.tls, admin=case.admin)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_rendered_config_golden(case: Case, json_snapshot: SnapshotAssertion) -> None:
    assert _render(case) == json_snapshot


def test_render_is_deterministic_whatever_the_route_order() -> None:
    case = CASES[2]
    reordered = Case(case.name, tuple(reversed(case.routes)), case.tls, case.config)
    assert json.dumps(_render(case)) == json.dumps(_render(reordered))


@pytest.fixture
def caddy_env(tmp_path: Path) -> dict[str, str]:
    """Caddy's data and config dirs inside the test's tmp dir (nothing left in $HOME)."""
    return {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }


@pytest.mark.integration
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_real_caddy_accepts_the_config(
    case: Case, tmp_path: Path, caddy_env: dict[str, str]
) -> None:
    config = tmp_path / "caddy.json"
    config.write_text(json.dumps(_render(case)))
    result = subprocess.run(
        [str(caddy_binary()), "validate", "--config", str(config)],
        capture_output=True,
        text=True,
        env=caddy_env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Valid configuration" in result.stdout + result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Backend(socketserver.ThreadingTCPServer):
    """An upstream that answers HTTP GETs and echoes bytes after a WebSocket-style upgrade."""

    daemon_threads = True
    allow_reuse_address = True


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            chunk = self.rfile.readline()
            if not chunk:
                return
            head += chunk
        lines = head.decode().split("\r\n")
        pairs = (h.partition(":") for h in lines[1:])
        headers = {k.strip().lower(): v.strip() for k, _, v in pairs}
        if headers.get("upgrade", "").lower() == "websocket":
            self.wfile.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\n\r\n"
            )
            self.wfile.flush()
            data = self.rfile.read(len(b"ping"))  # read() blocks until all 4 bytes came
            self.wfile.write(b"echo:" + data)
            self.wfile.flush()
            return
        body = f"upstream saw {lines[0].split()[1]} for {headers.get('host')}".encode()
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (len(body), body)
        )


@pytest.fixture
def backend() -> Iterator[int]:
    server = _Backend(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def _get(port: int, host: str, path: str) -> tuple[int, str]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _wait_until_serving(proc: subprocess.Popen[bytes], port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "caddy exited early"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"caddy did not listen on {port} within {timeout}s")


@pytest.mark.integration
def test_real_caddy_routes_by_host_and_path_and_passes_websockets(
    tmp_path: Path, caddy_env: dict[str, str], backend: int
) -> None:
    http_port, admin_port = _free_port(), _free_port()
    routes = [
        Route("app.shop.test", "localhost", backend),
        Route("app.shop.test", "127.0.0.1", backend, "/api"),
    ]
    config = _caddy({"http_port": http_port}).render_config(
        routes, tls="off", admin=f"127.0.0.1:{admin_port}"
    )
    path = tmp_path / "caddy.json"
    path.write_text(json.dumps(config))
    proc = subprocess.Popen(
        [str(caddy_binary()), "run", "--config", str(path)],
        env=caddy_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_serving(proc, http_port)
        assert _get(http_port, "app.shop.test", "/") == (200, "upstream saw / for app.shop.test")
        assert _get(http_port, "app.shop.test", "/api/x") == (
            200,
            "upstream saw /api/x for app.shop.test",
        )
        assert _get(http_port, "nothing.shop.test", "/") == (404, "no route for this host\n")
        with socket.create_connection(("127.0.0.1", http_port), timeout=10) as sock:
            sock.sendall(
                b"GET /hmr HTTP/1.1\r\nHost: app.shop.test\r\nConnection: Upgrade\r\n"
                b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            )
            reply = b""
            while b"\r\n\r\n" not in reply:
                reply += sock.recv(1024)
            assert reply.startswith(b"HTTP/1.1 101")
            sock.sendall(b"ping")
            echoed = reply.split(b"\r\n\r\n", 1)[1]
            while len(echoed) < len(b"echo:ping"):
                chunk = sock.recv(64)
                assert chunk, "connection closed before the echo arrived"
                echoed += chunk
            assert echoed == b"echo:ping"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_conflicting_routes_fail_with_both_upstreams() -> None:
    with pytest.raises(RouteError) as info:
        sort_routes([Route("a.test", "web", 80), Route("a.test", "api", 4000)])
    assert info.value.message == "two routes for a.test: web:80 and api:4000"


def test_identical_routes_are_merged() -> None:
    route = Route("a.test", "web", 80, "/x/")
    assert sort_routes([route, Route("a.test", "web", 80, "/x")]) == [route]
    assert route.path == "/x"
    assert Route("a.test", "web", 80, "/").path is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("Shop.COM", "web", 80), "not a valid hostname"),
        (("a..test", "web", 80), "not a valid hostname"),
        (("a.test", "", 80), "invalid upstream host"),
        (("a.test", "web", 0), "out of range"),
        (("a.test", "web", 80, "api"), "must be a prefix"),
        (("a.test", "web", 80, "/api/*"), "must be a prefix"),
    ],
)
def test_malformed_routes_are_rejected(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(RouteError, match=message):
        Route(*args)


def test_wildcards_need_internal_tls() -> None:
    with pytest.raises(RouteError, match="cannot get an ACME certificate"):
        _caddy().render_config([Route("*.shop.com", "web", 80)], tls="acme")


def test_unknown_tls_mode_is_rejected() -> None:
    with pytest.raises(RouteError, match="unknown TLS mode 'on'; known: acme, internal, off"):
        _caddy().render_config([], tls="on")  # type: ignore[arg-type]


def test_admin_defaults_to_the_configured_address() -> None:
    config = _caddy({"admin": "0.0.0.0:2019"}).render_config([], tls="off")
    assert config["admin"] == {"listen": "0.0.0.0:2019", "config": {"persist": False}}

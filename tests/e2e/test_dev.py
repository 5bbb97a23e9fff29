"""`stagecraft dev` on examples/quickstart, run as the installed command in a subprocess.

One session (real PostgreSQL in Docker, the Node backend, Vite, the Caddy proxy)
serves the read-only checks, then loses its backend, then gets SIGINT. The CA
lives in a temporary XDG_DATA_HOME (never the user's), PostgreSQL is a local
image built FROM the debootstrap Debian image (no registry here), and *.localhost
names are reached by connecting to 127.0.0.1 with the name as TLS SNI and Host
(what browsers and curl do for *.localhost). Every TLS connection verifies the
proxy's certificate against the dev CA.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stagecraft.dev import proctree

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "quickstart"
PROJECT = "quickstart"
API = "api.quickstart.localhost"
APP = "app.quickstart.localhost"


def stagecraft_exe() -> str:
    beside = Path(sys.executable).with_name("stagecraft")
    exe = str(beside) if beside.exists() else shutil.which("stagecraft")
    assert exe, "the stagecraft command is not installed"
    return exe


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.2)


def postgres_image() -> str:
    """The local stand-in for the quickstart's PostgreSQL (no registry here), built once."""
    from stagecraft.testing.images import ensure_postgres_image

    return ensure_postgres_image()


def compose(project_dir: Path, env: dict[str, str], *args: str) -> str:
    argv = ["docker", "compose", "-p", PROJECT, "--project-directory", str(project_dir)]
    argv += ["-f", str(project_dir / "docker-compose.yml"), *args]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    return result.stdout


def running_containers(project_dir: Path, env: dict[str, str]) -> list[str]:
    return compose(project_dir, env, "ps", "--status", "running", "--services").split()


def processes_in(directory: Path) -> list[str]:
    """Every process whose working directory is inside ``directory`` (pid and command)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if cwd == directory or directory in cwd.parents:
            found.append(f"{entry.name} {proctree.cmdline(int(entry.name))}")
    return found


@dataclass
class Project:
    dir: Path
    env: dict[str, str]
    ca: Path


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """A copy of the quickstart with its npm packages installed, and the env to run it."""
    work = tmp_path_factory.mktemp("dev") / PROJECT
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("node_modules", ".stagecraft"))
    for app in ("api", "web"):
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel", "error"],
            cwd=work / app,
            check=True,
            capture_output=True,
            timeout=300,
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGECRAFT_")}
    data = work.parent / "xdg-data"
    env.update(
        NO_COLOR="1",
        XDG_DATA_HOME=str(data),
        STAGECRAFT_CA="own",
        POSTGRES_IMAGE=postgres_image(),
    )
    compose(work, env, "down", "--volumes", "--remove-orphans")
    try:
        yield Project(work, env, data / "stagecraft" / "ca" / "ca.pem")
    finally:
        compose(work, env, "down", "--volumes", "--remove-orphans")


@dataclass
class Session:
    proc: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    project: Project

    def out(self) -> str:
        return self.stdout.read_text(errors="replace")

    def err(self) -> str:
        return self.stderr.read_text(errors="replace")


def start_dev(project: Project, *args: str, config: str | None = None) -> Session:
    log_dir = project.dir.parent
    stdout, stderr = log_dir / "dev.out", log_dir / "dev.err"
    argv = [stagecraft_exe(), "dev", *args]
    if config:
        argv += ["-c", config]
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(argv, cwd=project.dir, env=project.env, stdout=out, stderr=err)
    return Session(proc, stdout, stderr, project)


def run_dev(project: Project, *args: str, config: str | None = None) -> Session:
    """Run `stagecraft dev` expecting it to fail on its own."""
    session = start_dev(project, *args, config=config)
    try:
        session.proc.wait(timeout=120)
    finally:
        if session.proc.poll() is None:
            session.proc.kill()
    return session


@pytest.fixture(scope="module")
def session(quickstart: Project) -> Iterator[Session]:
    """One running `stagecraft dev` on the quickstart, ready."""
    dev = start_dev(quickstart)
    try:
        wait_until(
            lambda: "ready in" in dev.out() or dev.proc.poll() is not None, 180, "dev to be ready"
        )
        assert dev.proc.poll() is None, f"dev exited:\n{dev.out()}\n{dev.err()}"
        yield dev
    finally:
        if dev.proc.poll() is None:
            dev.proc.send_signal(signal.SIGINT)
            try:
                dev.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                dev.proc.kill()


def tls(project: Project, host: str, port: int = 443) -> ssl.SSLSocket:
    """A TLS connection to the proxy for ``host``, verified against the dev CA (no -k)."""
    context = ssl.create_default_context(cafile=str(project.ca))
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return context.wrap_socket(raw, server_hostname=host)


def https(
    project: Project,
    host: str,
    path: str,
    *,
    method: str = "GET",
    body: bytes = b"",
    port: int = 443,
) -> tuple[int, dict[str, str], bytes]:
    with tls(project, host, port) as sock:
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        sock.sendall(head.encode() + b"\r\n" + body)
        return parse_response(read_all(sock))


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def parse_response(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return int(lines[0].split()[1]), headers, body


def dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return out


# -- the running session -----------------------------------------------------------------


def test_dev_serves_the_quickstart_over_https(session: Session) -> None:
    project = session.project
    status, _, body = https(project, API, "/api/notes")
    assert status == 200, body
    texts = [note["text"] for note in json.loads(body)["notes"]]
    assert any("docker compose up --wait" in text for text in texts)  # seeded by a migration
    note = f"written through the proxy {time.time()}"
    status, _, body = https(
        project, API, "/api/notes", method="POST", body=json.dumps({"text": note}).encode()
    )
    assert status == 201, body
    status, _, body = https(project, API, "/api/notes")
    assert note in [n["text"] for n in json.loads(body)["notes"]]
    status, _, page = https(project, APP, "/")
    assert status == 200
    assert b"<title>Stagecraft quickstart</title>" in page and b"/@vite/client" in page
    summary = session.out()
    assert f"https://{API}" in summary and f"https://{APP}" in summary
    assert "DATABASE_URL=postgresql://quickstart:***@127.0.0.1:" in summary
    assert "quickstart-dev" not in summary + session.err()  # the password never shows
    assert "postgres" in running_containers(project.dir, project.env)


def test_vite_hmr_websocket_upgrade_passes_the_proxy(session: Session) -> None:
    project = session.project
    status, _, client = https(project, APP, "/@vite/client")
    assert status == 200
    token = re.search(rb'const wsToken = "([^"]+)"', client)
    assert token, "no wsToken in Vite's client"
    key = base64.b64encode(os.urandom(16)).decode()
    with tls(project, APP) as sock:
        sock.sendall(
            (
                f"GET /?token={token.group(1).decode()} HTTP/1.1\r\nHost: {APP}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Protocol: vite-hmr\r\nOrigin: https://{APP}\r\n\r\n"
            ).encode()
        )
        data = b""
        while b"connected" not in data:
            chunk = sock.recv(4096)
            assert chunk, f"connection closed: {data!r}"
            data += chunk
    head = data.split(b"\r\n\r\n")[0].decode()
    assert head.startswith("HTTP/1.1 101"), head
    accept = base64.b64encode(
        hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    ).decode()
    assert f"Sec-WebSocket-Accept: {accept}" in head
    assert b'{"type":"connected"}' in data  # Vite's first HMR message


def test_http_redirects_to_https(session: Session) -> None:
    with socket.create_connection(("127.0.0.1", 80), timeout=10) as sock:
        sock.sendall(
            f"GET /api/notes?x=1 HTTP/1.1\r\nHost: {API}\r\nConnection: close\r\n\r\n".encode()
        )
        status, headers, _ = parse_response(read_all(sock))
    assert status == 308
    assert headers["location"] == f"https://{API}/api/notes?x=1"


def test_killed_backend_is_reported_and_the_rest_keeps_serving(session: Session) -> None:
    table = proctree.process_table()
    backend = [
        p
        for p in proctree.descendants([session.proc.pid], table)
        if "server.js" in proctree.cmdline(p.pid)
    ]
    assert len(backend) == 1, [proctree.cmdline(p.pid) for p in backend]
    os.kill(backend[0].pid, signal.SIGKILL)
    wait_until(lambda: "backend: warning: was killed by SIGKILL" in session.err(), 15, "the report")
    assert "backend  | [stagecraft] was killed by SIGKILL" in session.err()  # with its last lines
    status, _, _ = https(session.project, APP, "/")
    assert status == 200  # frontend and proxy keep serving
    status, _, _ = https(session.project, API, "/healthz")
    assert status == 502  # the proxy answers for the dead backend
    assert session.proc.poll() is None


def test_sigint_stops_every_process_and_the_infra(session: Session) -> None:
    project = session.project
    tree = proctree.descendants([session.proc.pid], proctree.process_table())
    commands = " ".join(proctree.cmdline(p.pid) for p in tree)
    assert "caddy" in commands and "vite" in commands and "esbuild" in commands
    session.proc.send_signal(signal.SIGINT)
    assert session.proc.wait(timeout=60) == 0, session.err()
    left = [f"{p.pid} {p.comm}" for p in tree if proctree.is_alive(p)]
    assert left == []
    assert processes_in(project.dir) == []
    assert running_containers(project.dir, project.env) == []
    assert "stagecraft dev: stopped, infra stopped" in session.err()


def start_ready(project: Project) -> Session:
    dev = start_dev(project)
    wait_until(
        lambda: "ready in" in dev.out() or dev.proc.poll() is not None, 180, "dev to be ready"
    )
    assert dev.proc.poll() is None, f"dev exited:\n{dev.out()}\n{dev.err()}"
    return dev


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_sigterm_stops_like_ctrl_c(quickstart: Project, sig: signal.Signals) -> None:
    """SIGTERM (`kill`, CI) and SIGHUP (a closed terminal) stop dev like Ctrl-C."""
    dev = start_ready(quickstart)
    tree = proctree.descendants([dev.proc.pid], proctree.process_table())
    dev.proc.send_signal(sig)
    assert dev.proc.wait(timeout=60) == 0, dev.err()
    assert [p.pid for p in tree if proctree.is_alive(p)] == []
    assert processes_in(quickstart.dir) == []
    assert running_containers(quickstart.dir, quickstart.env) == []
    assert "stagecraft dev: stopped, infra stopped" in dev.err()


def test_second_ctrl_c_forces_and_still_leaves_nothing(quickstart: Project) -> None:
    dev = start_ready(quickstart)
    tree = proctree.descendants([dev.proc.pid], proctree.process_table())
    dev.proc.send_signal(signal.SIGINT)
    wait_until(lambda: "Ctrl-C again to force" in dev.err(), 30, "the first Ctrl-C to register")
    dev.proc.send_signal(signal.SIGINT)
    dev.proc.wait(timeout=60)
    assert [p.pid for p in tree if proctree.is_alive(p)] == []
    assert processes_in(quickstart.dir) == []
    assert running_containers(quickstart.dir, quickstart.env) == []
    assert "killed" in dev.err(), dev.err()


# -- bad inputs: one line naming the component, non-zero exit, nothing left running --------


def assert_failed_cleanly(result: Session, first_line: str) -> None:
    project = result.project
    assert result.proc.returncode not in (0, None)
    errors = [line for line in result.err().splitlines() if line.startswith("error: ")]
    assert errors and re.match(first_line, errors[0]), result.err()
    assert processes_in(project.dir) == []
    assert running_containers(project.dir, project.env) == []


def variant(project: Project, name: str, old: str, new: str) -> str:
    text = (project.dir / "stagecraft.yml").read_text()
    assert old in text
    (project.dir / name).write_text(text.replace(old, new))
    return name


def test_bad_input_port_already_taken(quickstart: Project) -> None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 4000))
        sock.listen()
        result = run_dev(quickstart)
    assert_failed_cleanly(result, r"error: backend: port 4000 is already in use by .*python")


def test_bad_input_docker_not_running(quickstart: Project) -> None:
    project = Project(
        quickstart.dir, {**quickstart.env, "DOCKER_HOST": "unix:///nonexistent.sock"}, quickstart.ca
    )
    result = run_dev(project)
    assert result.proc.returncode == 6
    assert_failed_cleanly(
        Session(result.proc, result.stdout, result.stderr, quickstart),
        r"error: infra: Docker is not running",
    )


def test_bad_input_dev_command_missing(quickstart: Project) -> None:
    config = variant(
        quickstart, "bad-command.yml", "command: [node, server.js]", "command: [no-such-dev-server]"
    )
    result = run_dev(quickstart, config=config)
    assert_failed_cleanly(
        result, r"error: backend: command `no-such-dev-server` not found on PATH$"
    )


def test_bad_input_readiness_timeout(quickstart: Project) -> None:
    config = variant(
        quickstart,
        "slow-ready.yml",
        "ready: {http: /healthz, timeout: 30}",
        'ready: {log: "never printed", timeout: 3}',
    )
    result = run_dev(quickstart, "--down", config=config)
    assert_failed_cleanly(result, r"error: backend: not ready after 3s")
    assert "starting postgres" in result.err()  # it got as far as the infra...
    assert compose(quickstart.dir, quickstart.env, "ps", "--all", "--services").split() == []
    # ...and removed it (--down)


# -- hosts file, custom ports, trust, dry run (no Docker needed) ----------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_dev_custom_ports_and_managed_hosts_file(tmp_path: Path) -> None:
    backend_port, https_port, http_port = free_port(), free_port(), free_port()
    (tmp_path / "compose.yaml").write_text("services:\n  api:\n    image: busybox\n")
    (tmp_path / "stagecraft.yml").write_text(
        "project: shop\n"
        "backend:\n  provider: generic\n  providers:\n    generic:\n      service: api\n"
        f"      dev: {{command: [python3, -m, http.server, '{backend_port}', --bind, 127.0.0.1],"
        f" port: {backend_port}, ready: {{http: /}}}}\n"
        "dev:\n  domain: shop.test\n  hosts_file: true\n  routes: {api: backend}\n"
    )
    hosts = tmp_path / "hosts"
    original = b"127.0.0.1\tlocalhost\r\n# a comment \xe9\r\n::1 ip6-localhost"
    hosts.write_bytes(original)
    data = tmp_path / "xdg"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGECRAFT_")}
    env.update(
        NO_COLOR="1", XDG_DATA_HOME=str(data), STAGECRAFT_CA="own", STAGECRAFT_HOSTS_FILE=str(hosts)
    )
    project = Project(tmp_path, env, data / "stagecraft" / "ca" / "ca.pem")
    dev = start_dev(project, "--https-port", str(https_port), "--http-port", str(http_port))
    try:
        wait_until(lambda: "ready in" in dev.out() or dev.proc.poll() is not None, 60, "ready")
        assert dev.proc.poll() is None, dev.err()
        assert f"https://api.shop.test:{https_port}" in dev.out()
        assert b"127.0.0.1\tapi.shop.test" in hosts.read_bytes()
        status, _, _ = https(project, "api.shop.test", "/", port=https_port)
        assert status == 200
        with socket.create_connection(("127.0.0.1", http_port), timeout=10) as sock:
            sock.sendall(b"GET /x HTTP/1.1\r\nHost: api.shop.test\r\nConnection: close\r\n\r\n")
            status, headers, _ = parse_response(read_all(sock))
        assert (status, headers["location"]) == (308, f"https://api.shop.test:{https_port}/x")
    finally:
        dev.proc.send_signal(signal.SIGINT)
        dev.proc.wait(timeout=30)
    assert dev.proc.returncode == 0, dev.err()
    assert hosts.read_bytes() == original
    assert processes_in(tmp_path) == []


def test_dev_trust_prints_the_steps(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGECRAFT_")}
    env.update(NO_COLOR="1", XDG_DATA_HOME=str(tmp_path), STAGECRAFT_CA="own")
    result = subprocess.run(
        [stagecraft_exe(), "dev", "trust", "--print-only"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    ca = tmp_path / "stagecraft" / "ca" / "ca.pem"
    assert ca.is_file()
    assert f"export NODE_EXTRA_CA_CERTS={ca}" in result.stdout


def test_dev_dry_run_prints_the_plan(quickstart: Project) -> None:
    result = subprocess.run(
        [stagecraft_exe(), "dev", "--dry-run", "--json"],
        cwd=quickstart.dir,
        env=quickstart.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["infra"]["services"] == ["postgres"]
    assert [r["url"] for r in plan["routes"]] == [f"https://{API}", f"https://{APP}"]
    assert [p["name"] for p in plan["processes"]] == ["backend", "frontend"]

"""The Caddy proxy on a host, and switching a route's upstream without dropping a request.

The host-side half of the built-in ``caddy`` proxy provider: :class:`CaddyHost` is
what ``CaddyProxy.on_host`` returns to the deploy core. One Caddy container
(``stagecraft-proxy``) per host serves every project and environment deployed
there (ADR 0005, sections 2, 3 and 5). Its state lives in
``/var/lib/stagecraft/proxy``: ``settings.json`` (image, TLS mode, ports),
``routes.json`` (the route set of every app on the host), ``caddy.json`` (the
config rendered from both), ``upstreams/``, ``ports/`` and ``slots/`` (where
each route's requests go, see :mod:`stagecraft.providers.builtin.proxy_caddy.slots`) and
``data/`` (certificates, ACME account).

How a switch works (measured with ``bench/zero_downtime_switch.py``; ADR 0015):
each route has static upstreams whose dial address Caddy reads from a slot file
at every request; a switch renames new slot files into place, so the next
request goes to the new containers. The proxy config is never reloaded by a
switch, so no client connection is closed, and the old containers keep
running: requests already on their way finish there. The drain then asks the
proxy how many requests each old address still has in flight (the admin API's
``/reverse_proxy/upstreams``) and ends when none has, bounded by ``drain``. A
config reload (``POST /load``) per switch closes idle keep-alive client
connections and loses requests racing that; Docker network aliases cannot
remove one container from a name while it keeps its address on the network.

The admin API listens on the container's loopback only; route changes are
loaded with ``docker exec stagecraft-proxy caddy reload`` (the caddy binary is
the one program every Caddy image has, a ``FROM scratch`` one included). A
switch is observed through a probe server inside the proxy (port 2020 on the
``stagecraft`` network, reached through an SSH tunnel): it proxies to the same
upstream name and answers with the address Caddy really chose; its
``/_stagecraft/inflight`` route answers the admin API's upstream list.

Example (what the rollout does on each host, through :class:`CaddyHost`)::

    state = ensure_proxy(host, image="caddy:2", tls_mode="acme", email="ops@shop.com")
    name = upstream_name("shop", "prod", "web")
    apply_routes(host, "shop", "prod", [Route("shop.com", name, 8080)])
    ...  # start the new web containers, wait until healthy
    result = switch(host, name, ["172.18.0.9"], proxy=state)   # returns once routed
    drain(host, state, ["172.18.0.7"], timeout=30)  # until the old one has no request left
    ...  # then stop the old containers
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass

from stagecraft import log
from stagecraft.errors import CommandFailed, ExitCode, HostError, StagecraftError, cause_lines
from stagecraft.providers.builtin.proxy_caddy import SLOTS, slots
from stagecraft.providers.builtin.proxy_caddy.settings import (
    INFLIGHT_PATH,
    PROBE_PATH,
    PROBE_PORT,
    UPSTREAM_HEADER,
    ProxySettings,
    render_proxy_config,
    routes_from_json,
    routes_to_json,
)
from stagecraft.providers.proxy import (
    EDGE_NETWORK,
    HostProxy,
    ProxyState,
    Route,
    RoutesResult,
    SwitchResult,
    TlsMode,
    check_tls,
)
from stagecraft.runtime.ssh import SSHHost

logger = logging.getLogger(__name__)

PROXY_CONTAINER = "stagecraft-proxy"
NETWORK = EDGE_NETWORK
PROXY_DIR = "/var/lib/stagecraft/proxy"
CONTAINER_DIR = "/etc/stagecraft/proxy"
SETTINGS_FILE = f"{PROXY_DIR}/settings.json"
ROUTES_FILE = f"{PROXY_DIR}/routes.json"
CONFIG_FILE = f"{PROXY_DIR}/caddy.json"
SLOT_DIR = f"{CONTAINER_DIR}/slots"
SETTINGS_LABEL = "stagecraft.proxy-settings"
ADMIN = "localhost:2019"


class EdgeError(HostError):
    """The edge proxy of a host could not be set up, reconfigured or switched."""


class ProxyImageUnavailable(EdgeError):
    """The proxy image is not on the host and the host's Docker daemon cannot pull it."""

    exit_code = ExitCode.FAILED

    def __init__(self, host: SSHHost, image: str, output: str) -> None:
        cause = "; ".join(cause_lines(output)) or output.strip()[-300:] or "docker pull failed"
        super().__init__(
            host.name,
            f"the proxy image {image!r} is not on the host and its Docker daemon "
            f"cannot pull it: {cause}",
            hint=f"set proxy.providers.caddy.image in stagecraft.yml to an image this host can "
            f"pull, or load it onto the host: `docker save {image} | "
            f"ssh {host.target.destination} docker load`",
        )
        self.image = image


def ensure_proxy(
    host: SSHHost,
    *,
    image: str = "caddy:2",
    tls_mode: TlsMode = "acme",
    email: str | None = None,
    http_port: int = 80,
    https_port: int = 443,
    upstream_refresh: float = 1.0,
    timeout: float = 60.0,
) -> ProxyState:
    """Make the host's proxy run with these settings; idempotent.

    Creates the ``stagecraft`` network, the state directory, the slot files and
    the config (from the routes already on the host), and the container with
    ``--restart unless-stopped``. A running container with the same settings is
    left alone (``created`` False; its config is reloaded only when it changed);
    different settings replace it (a short gap).

    Example::

        state = ensure_proxy(host, image="caddy:2", tls_mode="off", http_port=8080)
    """
    settings = ProxySettings(
        image, check_tls(tls_mode), email, http_port, https_port, upstream_refresh
    )
    return _ensure(host, settings, timeout)[0]


def _ensure(
    host: SSHHost, settings: ProxySettings, timeout: float
) -> tuple[ProxyState, _Snapshot | None]:
    """:func:`ensure_proxy`; the snapshot it read when nothing had to change, else None."""
    snap = _snapshot(host)
    if snap.unchanged(settings):  # the usual deploy: one round trip
        assert snap.proxy is not None
        log.event(logger, logging.INFO, "proxy ready", host=host.name, phase="edge")
        return ProxyState(host.name, snap.proxy[0], snap.proxy[3], False), snap
    _ensure_network(host)
    host.run(["mkdir", "-p", f"{PROXY_DIR}/data", f"{PROXY_DIR}/config"])
    host.write_file(SETTINGS_FILE, settings.to_json(), mode=0o644)
    routes = _read_routes(host)
    host.run(["sh", "-c", slots.update_script(PROXY_DIR, None, ports=_ports(routes))])
    config = _render(settings, routes)
    previous = host.read_file(CONFIG_FILE)
    if previous != config:
        host.write_file(CONFIG_FILE, config, mode=0o644)
    current = _inspect(host)
    if current is not None and current[1] and current[2] == settings.fingerprint():
        if previous != config:
            _wait_loaded(host, timeout)
        log.event(logger, logging.INFO, "proxy ready", host=host.name, phase="edge")
        return ProxyState(host.name, current[0], current[3], False), None
    created = False
    if current is None or current[2] != settings.fingerprint():
        _ensure_image(host, settings.image)  # before the running proxy is removed
    if current is not None and current[2] != settings.fingerprint():
        log.event(logger, logging.INFO, "replacing the proxy (settings changed)", host=host.name)
        host.docker("rm", "-f", PROXY_CONTAINER)
        current = None
    if current is None:
        host.docker(*_run_args(settings))
        created = True
    elif not current[1]:
        host.docker("start", PROXY_CONTAINER)
    _wait_loaded(host, timeout)
    found = _inspect(host)
    if found is None:
        raise EdgeError(host.name, f"the proxy container {PROXY_CONTAINER} vanished")
    log.event(logger, logging.INFO, "proxy ready", host=host.name, phase="edge")
    return ProxyState(host.name, found[0], found[3], created), None


def apply_routes(
    host: SSHHost,
    project: str,
    env: str,
    routes: Sequence[Route],
    *,
    timeout: float = 30.0,
    snapshot: _Snapshot | None = None,
) -> RoutesResult:
    """Set ``project``/``env``'s routes on the host's proxy, keeping every other app's.

    Loads the new config (``caddy reload``) only when the merged route set
    changed; a conflict with another app's route raises RouteError and
    changes nothing; a config Caddy rejects is rolled back.

    Example::

        apply_routes(host, "shop", "prod", [Route("shop.com", "web.prod.shop.internal", 80)])
    """
    app = f"{project}/{env}"
    # A snapshot read a moment ago (by ensure) is good enough for the fast path: routes
    # it shows cannot have been removed since, and a missing one takes the locked path.
    snap = snapshot or _snapshot(host)
    if snap.settings is not None and snap.config is not None:
        # This app's routes are there already (another app's change cannot remove
        # them): nothing to write, no lock needed.
        table = routes_from_json(snap.routes or b"{}")
        if table.get(app, []) == sorted(routes) and (routes or app not in table):
            current = ProxySettings.from_json(snap.settings)
            all_routes = [r for key in sorted(table) for r in table[key]]
            if _render(current, all_routes) == snap.config:
                return RoutesResult(host.name, False, tuple(all_routes))
    settings = read_settings(host)
    with _remote_lock(host, f"{PROXY_DIR}/routes.lock", timeout):
        table = _read_route_table(host)
        merged = {**table, app: sorted(routes)}
        if not routes:
            merged.pop(app)
        all_routes = [r for key in sorted(merged) for r in merged[key]]
        config = _render(settings, all_routes)  # raises RouteError on conflicts
        previous = host.read_file(CONFIG_FILE)
        if previous == config and merged == table:
            return RoutesResult(host.name, False, tuple(all_routes))
        _write_slots(host, all_routes)  # before the config that reads them
        host.write_file(CONFIG_FILE, config, mode=0o644)
        try:
            _reload(host)
        except CommandFailed as exc:
            _write_slots(host, [r for key in sorted(table) for r in table[key]])
            if previous is not None:
                host.write_file(CONFIG_FILE, previous, mode=0o644)
            raise EdgeError(
                host.name,
                f"the proxy rejected the routes of {app}: {exc.message}",
                hint=f"check the routes; the previous config stays loaded ({CONFIG_FILE})",
            ) from None
        host.write_file(ROUTES_FILE, routes_to_json(merged), mode=0o644)
    log.event(logger, logging.INFO, f"routes of {app} loaded", host=host.name, phase="edge")
    return RoutesResult(host.name, True, tuple(all_routes))


def switch(
    host: SSHHost,
    name: str,
    addresses: Sequence[str],
    *,
    proxy: ProxyState | None = None,
    wait: bool = True,
    timeout: float = 30.0,
) -> SwitchResult:
    """Make ``name``'s requests go to ``addresses``, then wait until the proxy routes there.

    Never touches the proxy config. With ``wait`` (the default) it returns once
    the proxy was seen sending requests to the new addresses
    (:func:`wait_switched`); old containers can be drained and stopped then.

    Example::

        switch(host, "web.prod.shop.internal", ["172.18.0.9", "172.18.0.10"])
    """
    if not slots.valid_name(name):
        raise StagecraftError(f"invalid upstream name {name!r}")
    bad = [a for a in addresses if not slots.valid_address(a)]
    if bad or not addresses:
        raise StagecraftError(
            f"switch {name} on {host.name}: invalid addresses {list(addresses)!r}",
            hint="pass the new containers' IP addresses on the stagecraft network",
        )
    if len(addresses) > SLOTS:
        raise StagecraftError(
            f"switch {name} on {host.name}: {len(addresses)} addresses, the proxy routes to "
            f"at most {SLOTS} per host",
            hint=f"run at most {SLOTS} replicas of a routed service per host; add hosts instead",
        )
    previous = tuple(read_upstreams(host).get(name, ()))
    started = time.monotonic()
    data = "".join(f"{a}\n" for a in addresses).encode()
    host.run(["sh", "-c", slots.update_script(PROXY_DIR, name)], input=data)
    log.event(logger, logging.INFO, f"{name} -> {', '.join(addresses)}", host=host.name)
    if wait:
        state = proxy or proxy_state(host)
        remaining = max(1.0, timeout - (time.monotonic() - started))
        wait_switched(host, state, name, addresses, timeout=remaining)
    return SwitchResult(
        host.name, name, tuple(addresses), previous, round(time.monotonic() - started, 3)
    )


def wait_switched(
    host: SSHHost,
    proxy: ProxyState,
    name: str,
    addresses: Sequence[str],
    *,
    timeout: float = 30.0,
    confirmations: int = 3,
) -> float:
    """Poll the proxy's probe until ``confirmations`` requests in a row reached ``addresses``.

    Returns the seconds waited; raises EdgeError on timeout naming the last upstream seen.
    """
    wanted = set(addresses)
    started = time.monotonic()
    deadline = started + timeout
    seen: str | None = None
    streak = 0
    with host.forward(proxy.address, PROBE_PORT) as port:
        while time.monotonic() < deadline:
            seen = _probe(port, name)
            streak = streak + 1 if seen is not None and _ip(seen) in wanted else 0
            if streak >= confirmations:
                return time.monotonic() - started
            if streak == 0:
                time.sleep(0.02)
    raise EdgeError(
        host.name,
        f"the proxy did not switch {name} to {', '.join(addresses)} within {timeout:g}s "
        f"(last upstream seen: {seen or 'none'})",
        hint="check that the new containers run on the stagecraft network and answer on the "
        "route's port; the old ones are still resolved only if the switch failed",
    )


def drain(
    host: SSHHost,
    proxy: ProxyState | None,
    addresses: Sequence[str],
    *,
    timeout: float,
    interval: float = 0.05,
) -> float:
    """Wait until the proxy has no request in flight to ``addresses``, at most ``timeout`` s.

    Returns the seconds waited. The proxy counts requests per upstream address
    (``/_stagecraft/inflight``); an address it does not list has none. When the
    count cannot be read the whole ``timeout`` is waited, as a fixed drain would.
    """
    started = time.monotonic()
    if timeout <= 0 or not addresses:
        return 0.0
    wanted = set(addresses)
    deadline = started + timeout
    state = proxy or proxy_state(host)
    with host.forward(state.address, PROBE_PORT) as port:
        while True:
            busy = _in_flight(port, wanted)
            if busy == 0:
                return time.monotonic() - started
            now = time.monotonic()
            if now >= deadline:
                log.event(
                    logger,
                    logging.INFO,
                    f"drain ended after {timeout:g}s with "
                    f"{'unknown' if busy is None else busy} request(s) in flight",
                    host=host.name,
                    phase="edge",
                )
                return now - started
            time.sleep(min(interval, deadline - now))


def read_settings(host: SSHHost) -> ProxySettings:
    """The proxy settings stored on the host; EdgeError when the proxy was never set up."""
    data = host.read_file(SETTINGS_FILE)
    if data is None:
        raise EdgeError(
            host.name,
            f"the edge proxy is not set up ({SETTINGS_FILE} is missing)",
            hint="run `stagecraft hosts bootstrap` (or a deploy) for this host first",
        )
    return ProxySettings.from_json(data)


def read_upstreams(host: SSHHost) -> dict[str, list[str]]:
    """Where each upstream name's requests go right now (its ``upstreams/<name>`` file)."""
    result = host.run(["sh", "-c", slots.read_script(PROXY_DIR)])
    return slots.parse_upstreams(result.stdout)


def read_routes(host: SSHHost) -> dict[str, list[Route]]:
    """The routes of every app on the host, by ``project/env``."""
    return _read_route_table(host)


def proxy_state(host: SSHHost) -> ProxyState:
    """The running proxy's state; EdgeError when it is not running."""
    found = _inspect(host)
    if found is None or not found[1]:
        raise EdgeError(
            host.name,
            f"the proxy container {PROXY_CONTAINER} is not running",
            hint="run `stagecraft hosts bootstrap` for this host",
        )
    return ProxyState(host.name, found[0], found[3], False)


# -- internals -------------------------------------------------------------------------


def _render(settings: ProxySettings, routes: Sequence[Route]) -> bytes:
    """The proxy config file's bytes (deterministic)."""
    config = render_proxy_config(settings, routes, admin=ADMIN, slot_dir=SLOT_DIR)
    return (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()


def _run_args(settings: ProxySettings) -> list[str]:
    """``docker run`` arguments for the proxy container."""
    args = ["run", "-d", "--name", PROXY_CONTAINER, "--restart", "unless-stopped"]
    args += ["--network", NETWORK, "--label", f"{SETTINGS_LABEL}={settings.fingerprint()}"]
    args += ["--label", "stagecraft.kind=proxy"]
    for port in (settings.http_port, settings.https_port):
        args += ["-p", f"{port}:{port}"]
    if settings.tls_mode != "off":  # Caddy serves (and advertises) HTTP/3 over UDP too
        args += ["-p", f"{settings.https_port}:{settings.https_port}/udp"]
    args += ["-v", f"{PROXY_DIR}:{CONTAINER_DIR}:ro"]
    args += ["-v", f"{PROXY_DIR}/data:/data", "-v", f"{PROXY_DIR}/config:/config"]
    args += ["-e", "XDG_DATA_HOME=/data", "-e", "XDG_CONFIG_HOME=/config"]
    return [*args, settings.image, "caddy", "run", "--config", f"{CONTAINER_DIR}/caddy.json"]


def _ensure_image(host: SSHHost, image: str) -> None:
    """Pull ``image`` unless the host has it; :class:`ProxyImageUnavailable` if it cannot."""
    if host.docker("image", "inspect", "--format", "{{.Id}}", image, check=False).returncode == 0:
        return
    log.event(logger, logging.INFO, f"pulling the proxy image {image}", host=host.name)
    pulled = host.docker("pull", "--quiet", image, check=False)
    if pulled.returncode != 0:
        raise ProxyImageUnavailable(host, image, pulled.output)


def _ensure_network(host: SSHHost) -> None:
    """Create the ``stagecraft`` bridge network unless it exists (tolerating a racing create)."""
    if host.docker("network", "inspect", NETWORK, check=False).returncode == 0:
        return
    created = host.docker("network", "create", "--driver", "bridge", NETWORK, check=False)
    if created.returncode != 0 and "already exists" not in created.output:
        raise EdgeError(host.name, f"cannot create the docker network {NETWORK}: {created.output}")


_INSPECT_FORMAT = (
    "{{.Id}} {{.State.Running}} "
    f'{{{{index .Config.Labels "{SETTINGS_LABEL}"}}}} '
    f'{{{{with index .NetworkSettings.Networks "{NETWORK}"}}}}{{{{.IPAddress}}}}{{{{end}}}}'
)


def _inspect(host: SSHHost) -> tuple[str, bool, str, str] | None:
    """(id, running, settings label, address) of the proxy container, or None."""
    result = host.docker("inspect", "--format", _INSPECT_FORMAT, PROXY_CONTAINER, check=False)
    if result.returncode != 0:
        return None
    return _parse_inspect(result.stdout)


def _parse_inspect(line: str) -> tuple[str, bool, str, str]:
    """The fields of one ``_INSPECT_FORMAT`` line (missing ones empty)."""
    fields = line.split()
    fields += [""] * (4 - len(fields))
    return fields[0], fields[1] == "true", fields[2], fields[3]


def _reload(host: SSHHost) -> None:
    """Load ``caddy.json`` through the admin API on the container's loopback."""
    host.docker(
        "exec",
        PROXY_CONTAINER,
        "caddy",
        "reload",
        "--config",
        f"{CONTAINER_DIR}/caddy.json",
        "--address",
        ADMIN,
    )


def _wait_loaded(host: SSHHost, timeout: float) -> None:
    """Wait until the proxy's admin API accepts the current config (a no-op reload)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _reload(host)
            return
        except CommandFailed as exc:
            if time.monotonic() >= deadline:
                logs = host.docker("logs", "--tail", "5", PROXY_CONTAINER, check=False).output
                raise EdgeError(
                    host.name,
                    f"the proxy did not start within {timeout:g}s: {exc.message}",
                    hint=f"see `docker logs {PROXY_CONTAINER}` on the host: {logs.strip()[-200:]}",
                ) from None
        time.sleep(0.3)


@dataclass(frozen=True)
class _Snapshot:
    """The proxy's files and container as read in one round trip (None: missing)."""

    settings: bytes | None
    routes: bytes | None
    config: bytes | None
    network: bool
    proxy: tuple[str, bool, str, str] | None

    def unchanged(self, settings: ProxySettings) -> bool:
        """Whether ``ensure_proxy(settings)`` has nothing to do: running, same files."""
        if not self.network or self.proxy is None or self.settings != settings.to_json():
            return False
        _, running, fingerprint, address = self.proxy
        if not running or fingerprint != settings.fingerprint() or not address:
            return False
        table = routes_from_json(self.routes or b"{}")
        return self.config == _render(settings, [r for key in sorted(table) for r in table[key]])


_SNAPSHOT_FILES = ("settings.json", "routes.json", "caddy.json")


def _snapshot(host: SSHHost) -> _Snapshot:
    """Read the proxy's settings, routes, config, network and container at once."""
    script = (
        f"d={shlex.quote(PROXY_DIR)}; "
        f"for f in {' '.join(_SNAPSHOT_FILES)}; do printf 'F %s ' \"$f\"; "
        'if [ -f "$d/$f" ]; then base64 < "$d/$f" | tr -d "\n"; else printf -; fi; echo; done; '
        f"docker network inspect {NETWORK} >/dev/null 2>&1 && echo 'N yes'; "
        f"printf 'P '; docker inspect --format {shlex.quote(_INSPECT_FORMAT)} "
        f"{PROXY_CONTAINER} 2>/dev/null || echo"
    )
    result = host.run(["sh", "-c", script], check=False)
    files: dict[str, bytes | None] = {}
    network, proxy = False, None
    for line in result.stdout.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "F":
            name, _, data = rest.partition(" ")
            files[name] = None if data.strip() in ("", "-") else base64.b64decode(data.strip())
        elif kind == "N":
            network = True
        elif kind == "P" and rest.strip():
            proxy = _parse_inspect(rest)
    return _Snapshot(
        files.get("settings.json"),
        files.get("routes.json"),
        files.get("caddy.json"),
        network,
        proxy,
    )


def _ports(routes: Sequence[Route]) -> dict[str, list[int]]:
    """Each upstream name's route ports."""
    ports: dict[str, list[int]] = {}
    for route in routes:
        ports.setdefault(route.upstream_host, []).append(route.upstream_port)
    return ports


def _write_slots(host: SSHHost, routes: Sequence[Route]) -> None:
    """Replace the ports files with ``routes``' and re-render every name's slot files."""
    host.run(["sh", "-c", slots.update_script(PROXY_DIR, None, ports=_ports(routes))])


def _read_route_table(host: SSHHost) -> dict[str, list[Route]]:
    data = host.read_file(ROUTES_FILE)
    return routes_from_json(data) if data is not None else {}


def _read_routes(host: SSHHost) -> list[Route]:
    table = _read_route_table(host)
    return [r for key in sorted(table) for r in table[key]]


class _remote_lock:  # noqa: N801 - used as a context manager, reads like one
    """A lock directory on the host (``mkdir`` is atomic); stale after 120 s."""

    def __init__(self, host: SSHHost, path: str, timeout: float) -> None:
        self.host, self.path, self.timeout = host, path, timeout

    def __enter__(self) -> None:
        script = (
            f"p={shlex.quote(self.path)}; end=$(( $(date +%s) + {int(self.timeout)} )); "
            'until mkdir "$p" 2>/dev/null; do '
            '  if [ -n "$(find "$p" -maxdepth 0 -mmin +2 2>/dev/null)" ]; then rmdir "$p"; '
            '  elif [ "$(date +%s)" -ge "$end" ]; then exit 75; fi; sleep 0.2; done'
        )
        if self.host.run(["sh", "-c", script], check=False).returncode != 0:
            raise EdgeError(
                self.host.name,
                f"another deploy is changing the proxy routes ({self.path} is held)",
                hint=f"retry; if no deploy runs, remove {self.path} on the host",
            )

    def __exit__(self, *_exc: object) -> None:
        self.host.run(["rmdir", self.path], check=False)


def _probe(port: int, name: str) -> str | None:
    """The upstream the proxy chose for one request to ``name`` (None when none answered)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        conn.request("GET", f"{PROBE_PATH}/{name}", headers={"Connection": "close"})
        response = conn.getresponse()
        response.read()
        return response.getheader(UPSTREAM_HEADER)
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def _in_flight(port: int, addresses: set[str]) -> int | None:
    """Requests the proxy has in flight to ``addresses`` (None when it cannot tell)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        conn.request("GET", INFLIGHT_PATH, headers={"Connection": "close"})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            return None
        listed = json.loads(body)
        return sum(
            int(entry.get("num_requests") or 0)
            for entry in listed
            if _ip(str(entry.get("address", ""))) in addresses
        )
    except (OSError, http.client.HTTPException, ValueError, TypeError, AttributeError):
        return None
    finally:
        conn.close()


def _ip(hostport: str) -> str:
    """The address part of ``host:port`` / ``[v6]:port``."""
    host = hostport.rsplit(":", 1)[0] if hostport.count(":") == 1 or "]" in hostport else hostport
    return host.strip("[]")


class CaddyHost(HostProxy):
    """The Caddy proxy on one host, as the deploy core drives it (:class:`HostProxy`).

    Remembers the container found by :meth:`ensure` so that switches and drains
    need no further lookup.

    Example::

        proxy = CaddyHost(host, ProxySettings("caddy:2", "acme"))
        proxy.ensure()
        proxy.apply_routes("shop", "prod", [Route("shop.com", "web.prod.shop.internal", 8080)])
        proxy.switch("web.prod.shop.internal", ["172.18.0.9"])
        proxy.drain(["172.18.0.7"], timeout=30)
    """

    def __init__(self, host: SSHHost, settings: ProxySettings) -> None:
        self.host = host
        self.settings = settings
        self._state: ProxyState | None = None
        self._snapshot: _Snapshot | None = None

    def ensure(self) -> ProxyState:
        self._state, self._snapshot = _ensure(self.host, self.settings, 60.0)
        return self._state

    def apply_routes(self, project: str, env: str, routes: Sequence[Route]) -> RoutesResult:
        snapshot, self._snapshot = self._snapshot, None  # good for the next call only
        return apply_routes(self.host, project, env, routes, snapshot=snapshot)

    def routes(self) -> dict[str, list[Route]]:
        return read_routes(self.host)

    def switch(self, name: str, addresses: Sequence[str], *, timeout: float = 30.0) -> SwitchResult:
        return switch(self.host, name, addresses, proxy=self._state, timeout=timeout)

    def drain(self, addresses: Sequence[str], *, timeout: float) -> float:
        return drain(self.host, self._state, addresses, timeout=timeout)


__all__ = [
    "NETWORK",
    "PROXY_CONTAINER",
    "PROXY_DIR",
    "CaddyHost",
    "EdgeError",
    "ProxyImageUnavailable",
    "ProxySettings",
    "ProxyState",
    "RoutesResult",
    "SwitchResult",
    "apply_routes",
    "drain",
    "ensure_proxy",
    "proxy_state",
    "read_routes",
    "read_settings",
    "read_upstreams",
    "switch",
    "wait_switched",
]

"""The plan of a ``stagecraft dev`` session: a plain value computed from the config.

:func:`build_plan` turns a loaded project into a :class:`DevPlan`: which compose
services start as infrastructure and which of their ports the host must reach
(bound on 127.0.0.1 by the generated override), which databases get a
connection string, the dev processes the providers ask for, the proxy routes
(``https://<route>.<domain>`` -> a dev-server port or a compose service port)
and the hosts-file names. Nothing runs: ``--dry-run`` prints
:meth:`DevPlan.to_json`, tests compare plans without Docker.

Ports Docker picks at start (``127.0.0.1::5432``) are unknown when the plan is
made; the session resolves them after ``docker compose up`` and builds the plan
again with :class:`Resolved` addresses, which fills ``DATABASE_URL`` and the
service routes.

Example::

    loaded = load_project()
    plan = build_plan(loaded, DevOptions(https_port=8443, http_port=8080))
    plan.urls()   # {'app': 'https://app.shop.localhost:8443', ...}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stagecraft.errors import StagecraftError, UsageError
from stagecraft.providers.backend import DevContext, DevProcess

if TYPE_CHECKING:
    from stagecraft.config.loader import LoadedConfig

STATE_DIR = Path(".stagecraft") / "dev"
"""Generated files of a session, relative to the project root."""
LOOPBACK = "127.0.0.1"
POSTGRES_PORT = 5432
DASHBOARD_ROUTE = "stagecraft"
"""The dev dashboard's host name under the dev domain: ``https://stagecraft.<domain>``."""


class DevError(StagecraftError):
    """``stagecraft dev`` cannot start: the message names the component (infra, proxy, ...)."""


@dataclass(frozen=True)
class DevOptions:
    """Choices of one ``stagecraft dev`` run (CLI flags)."""

    https_port: int = 443
    http_port: int = 80
    migrate: bool = True
    down: bool = False
    admin_port: int | None = None
    """The proxy's admin API port on 127.0.0.1; None: a free one at start."""
    ready_timeout: float | None = None
    """Overall wait for readiness; None: each process's own readiness timeout."""
    infra_timeout: float = 120.0
    hosts_path: Path | None = None
    """The hosts file to manage (default /etc/hosts)."""
    dashboard: bool = False
    """Serve the dev dashboard at ``https://stagecraft.<domain>`` through the proxy."""
    dashboard_port: int | None = None
    """Where the dashboard listens on 127.0.0.1 (None: a free port, picked by the session)."""


@dataclass(frozen=True)
class PortNeed:
    """A container port of an infra service that the host must reach.

    ``published`` is the host port when the compose file fixes one; otherwise
    the override publishes it on 127.0.0.1 and Docker picks the port.
    """

    service: str
    target: int
    published: int | None = None
    host_ip: str = LOOPBACK
    reason: str = ""

    @property
    def key(self) -> tuple[str, int]:
        return (self.service, self.target)


@dataclass(frozen=True)
class DevDatabase:
    """A dev database: its compose service, the env var that gets its DSN, its port."""

    name: str
    service: str
    url_env: str
    target: int = POSTGRES_PORT


@dataclass(frozen=True)
class ProxyRoute:
    """``https://<hostname>`` goes to 127.0.0.1:``port`` (None: a service port not known yet)."""

    name: str
    hostname: str
    url: str
    kind: str
    service: str | None
    target: int | None
    port: int | None

    def describe(self) -> str:
        """``frontend``, ``backend`` or ``mailpit:8025``."""
        return f"{self.service}:{self.target}" if self.kind == "service" else self.kind


@dataclass(frozen=True)
class Resolved:
    """Host addresses of infra ports once they run, and DSNs built from them."""

    addresses: Mapping[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class DevPlan:
    """Everything a dev session will do, as data (see the module docstring)."""

    project: str
    root: Path
    compose_project: str
    compose_files: tuple[Path, ...]
    project_directory: Path
    domain: str
    https: bool
    options: DevOptions
    infra: tuple[str, ...]
    ports: tuple[PortNeed, ...]
    databases: tuple[DevDatabase, ...]
    processes: tuple[DevProcess, ...]
    routes: tuple[ProxyRoute, ...]
    hosts_entries: tuple[str, ...]
    manage_hosts_file: bool
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    """What every dev server gets on top of its environment (``DATABASE_URL``...)."""
    dashboard: ProxyRoute | None = None
    """The dev dashboard's route (kind ``dashboard``), when it is served."""

    @property
    def proxy_routes(self) -> tuple[ProxyRoute, ...]:
        """What the proxy serves: the project's routes and the dashboard's."""
        return (*self.routes, self.dashboard) if self.dashboard is not None else self.routes

    @property
    def state_dir(self) -> Path:
        """``<root>/.stagecraft/dev``: the override, proxy config, certificates."""
        return self.root / STATE_DIR

    @property
    def override_path(self) -> Path:
        return self.state_dir / "compose.override.yml"

    @property
    def hostnames(self) -> tuple[str, ...]:
        return tuple(sorted(route.hostname for route in self.proxy_routes))

    def urls(self) -> dict[str, str]:
        """Route name -> its public URL."""
        return {route.name: route.url for route in self.routes}

    def needs_override(self) -> bool:
        """Whether some infra port must be published by the generated override."""
        return any(need.published is None for need in self.ports)

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON-ready data (secrets in env values redacted)."""
        return {
            "project": self.project,
            "root": str(self.root),
            "domain": self.domain,
            "https": self.https,
            "proxy": {
                "https_port": self.options.https_port if self.https else None,
                "http_port": self.options.http_port,
            },
            "infra": {
                "services": list(self.infra),
                "compose_files": [str(p) for p in self.compose_files],
                "override": str(self.override_path) if self.needs_override() else None,
                "ports": [
                    {
                        "service": p.service,
                        "target": p.target,
                        "published": p.published,
                        "host_ip": p.host_ip,
                        "reason": p.reason,
                    }
                    for p in self.ports
                ],
            },
            "migrate": self.options.migrate and bool(self.databases),
            "databases": [
                {"name": d.name, "service": d.service, "url_env": d.url_env} for d in self.databases
            ],
            "processes": [
                {
                    "name": p.name,
                    "argv": list(p.argv),
                    "cwd": str(p.cwd),
                    "port": p.port,
                    "readiness": _readiness_json(p),
                    "env": {k: redact_value(k, v) for k, v in sorted(p.env.items())},
                }
                for p in self.processes
            ],
            "routes": [
                {
                    "name": r.name,
                    "url": r.url,
                    "target": r.describe(),
                    "upstream": f"{LOOPBACK}:{r.port}" if r.port else None,
                }
                for r in self.routes
            ],
            "hosts_file": {
                "managed": self.manage_hosts_file,
                "entries": list(self.hosts_entries),
            },
            "on_stop": "down" if self.options.down else "stop",
            "dashboard": None
            if self.dashboard is None
            else {
                "url": self.dashboard.url,
                "upstream": f"{LOOPBACK}:{self.dashboard.port}" if self.dashboard.port else None,
            },
        }


def build_plan(
    loaded: LoadedConfig,
    options: DevOptions | None = None,
    resolved: Resolved | None = None,
    *,
    ca_cert: Path | None = None,
) -> DevPlan:
    """The :class:`DevPlan` of ``loaded`` (see the module docstring); DevError if inconsistent."""
    from stagecraft.dev.hostsfile import hosts_entries_needed

    opts = options or DevOptions()
    cfg = loaded.config
    compose = loaded.compose
    if compose is None:
        raise DevError(
            "infra: the compose model is not loaded", hint="load the project with its compose file"
        )
    resolved = resolved or Resolved()
    domain = cfg.dev_domain
    https = cfg.dev.https
    databases = _databases(loaded)
    dev_routes = cfg.dev_routes()
    infra = list(cfg.dev.infra)
    for extra in [d.service for d in databases] + [
        r.service for r in dev_routes.values() if r.kind == "service" and r.service
    ]:
        if extra not in infra:
            infra.append(extra)
    for name in infra:
        if name not in compose.services:
            known = ", ".join(sorted(compose.services)) or "none"
            raise DevError(
                f"infra: compose service {name!r} not found in {compose.display_name}",
                hint=f"fix dev.infra in {loaded.path} (services: {known})",
            )
    ports = _port_needs(loaded, databases, dev_routes)
    url_of = {
        name: public_url(f"{name}.{domain}", https, opts.https_port, opts.http_port)
        for name in dev_routes
    }
    kind_url: dict[str, str] = {
        r.kind: url_of[name] for name, r in dev_routes.items() if r.kind != "service"
    }
    env = dict(resolved.env)
    processes = _processes(loaded, domain, kind_url, env, ca_cert)
    by_kind = {p.name: p for p in processes}
    routes = []
    for name, route in sorted(dev_routes.items()):
        port: int | None
        if route.kind == "service":
            assert route.service is not None and route.port is not None
            address = resolved.addresses.get((route.service, route.port))
            port = address[1] if address else None
        else:
            proc = by_kind.get(route.kind)
            if proc is None:
                raise DevError(
                    f"proxy: route {name} points at the {route.kind}, but no {route.kind} "
                    "is configured",
                    hint=f"configure `{route.kind}:` in {loaded.path}, or remove dev.routes.{name}",
                )
            if proc.port is None:
                raise DevError(
                    f"proxy: route {name} points at the {route.kind}, which has no dev port",
                    hint=f"set the {route.kind} provider's dev port in {loaded.path}",
                )
            port = proc.port
        routes.append(
            ProxyRoute(
                name=name,
                hostname=f"{name}.{domain}",
                url=url_of[name],
                kind=route.kind,
                service=route.service,
                target=route.port,
                port=port,
            )
        )
    dashboard = _dashboard_route(loaded, opts, domain, https, dev_routes)
    hostnames = [route.hostname for route in routes]
    if dashboard is not None:
        hostnames.append(dashboard.hostname)
    return DevPlan(
        project=cfg.project.name,
        root=loaded.root,
        compose_project=compose.name,
        compose_files=tuple(compose.files),
        project_directory=compose.project_directory,
        domain=domain,
        https=https,
        options=opts,
        infra=tuple(infra),
        ports=tuple(ports),
        databases=tuple(databases),
        processes=tuple(processes),
        routes=tuple(routes),
        hosts_entries=tuple(hosts_entries_needed(hostnames)),
        manage_hosts_file=cfg.dev.hosts_file,
        env=env,
        dashboard=dashboard,
    )


def _dashboard_route(
    loaded: LoadedConfig, opts: DevOptions, domain: str, https: bool, dev_routes: Mapping[str, Any]
) -> ProxyRoute | None:
    if not opts.dashboard:
        return None
    if DASHBOARD_ROUTE in dev_routes:
        raise DevError(
            f"proxy: route {DASHBOARD_ROUTE} is taken by the dev dashboard",
            hint=f"rename dev.routes.{DASHBOARD_ROUTE} in {loaded.path}, or pass --no-dashboard",
        )
    hostname = f"{DASHBOARD_ROUTE}.{domain}"
    return ProxyRoute(
        name=DASHBOARD_ROUTE,
        hostname=hostname,
        url=public_url(hostname, https, opts.https_port, opts.http_port),
        kind="dashboard",
        service=None,
        target=None,
        port=opts.dashboard_port,
    )


def public_url(hostname: str, https: bool, https_port: int, http_port: int) -> str:
    """``https://app.shop.localhost`` (the port only when it is not the scheme's default).

    >>> public_url("app.shop.localhost", True, 8443, 8080)
    'https://app.shop.localhost:8443'
    """
    if https:
        return f"https://{hostname}" + ("" if https_port == 443 else f":{https_port}")
    return f"http://{hostname}" + ("" if http_port == 80 else f":{http_port}")


def database_env(plan: DevPlan, loaded: LoadedConfig, resolved_addresses: Resolved) -> Resolved:
    """``resolved_addresses`` plus each database's DSN under its ``url_env``."""
    from stagecraft.migrate.connection import postgres_dsn, service_environment

    assert loaded.compose is not None
    env: dict[str, str] = dict(resolved_addresses.env)
    for db in plan.databases:
        address = resolved_addresses.addresses.get((db.service, db.target))
        if address is None:
            continue
        service = loaded.compose.services[db.service]
        env[db.url_env] = postgres_dsn(service_environment(service), *address)
    return Resolved(addresses=resolved_addresses.addresses, env=env)


def redact_value(name: str, value: str) -> str:
    """``value`` with its passwords (:func:`stagecraft.redact.redact`) or, when ``name``
    looks secret, all of it replaced by ``***``."""
    upper = name.upper()
    if any(word in upper for word in ("PASSWORD", "SECRET", "TOKEN", "KEY")) and not upper.endswith(
        ("_KEY_FILE", "_CERTS")
    ):
        return "***"
    from stagecraft.redact import redact

    return redact(value)


def _databases(loaded: LoadedConfig) -> list[DevDatabase]:
    from stagecraft.migrate.connection import service_environment

    assert loaded.compose is not None
    found = []
    for name, db in loaded.config.databases.items():
        if db.service is None:
            continue
        service = loaded.compose.services.get(db.service)
        if service is None:
            continue
        port = service_environment(service).get("PGPORT") or POSTGRES_PORT
        found.append(DevDatabase(name, db.service, db.url_env, int(port)))
    return found


def _port_needs(
    loaded: LoadedConfig, databases: list[DevDatabase], dev_routes: Mapping[str, Any]
) -> list[PortNeed]:
    from stagecraft.migrate.connection import published_address

    assert loaded.compose is not None
    wanted: dict[tuple[str, int], str] = {}
    for db in databases:
        wanted.setdefault((db.service, db.target), f"database {db.name}")
    for name, route in sorted(dev_routes.items()):
        if route.kind == "service":
            wanted.setdefault((route.service, route.port), f"route {name}")
    needs = []
    for (service, target), reason in sorted(wanted.items()):
        fixed = published_address(loaded.compose.services[service], target)
        if fixed is not None:
            needs.append(PortNeed(service, target, fixed[1], fixed[0], reason))
        else:
            needs.append(PortNeed(service, target, None, LOOPBACK, reason))
    return needs


def _processes(
    loaded: LoadedConfig,
    domain: str,
    kind_url: Mapping[str, str],
    env: Mapping[str, str],
    ca_cert: Path | None,
) -> list[DevProcess]:
    from stagecraft.providers.base import registry

    cfg = loaded.config
    processes = []
    for kind in ("backend", "frontend"):
        selection = getattr(cfg, kind)
        if selection is None:
            continue
        provider = registry(kind).create(selection.provider, selection.block())
        ctx = DevContext(
            project=cfg.project.name,
            root=loaded.root,
            domain=domain,
            public_url=kind_url.get(kind),
            api_url=kind_url.get("backend"),
            env=dict(env),
            ca_cert=ca_cert,
        )
        proc: DevProcess = provider.dev_process(ctx)
        if proc.name != kind:
            proc = replace(proc, name=kind)
        processes.append(proc)
    return processes


def _readiness_json(proc: DevProcess) -> dict[str, Any]:
    ready = proc.readiness
    return {
        "kind": ready.kind,
        "http": ready.http_path,
        "log": ready.log_pattern,
        "timeout": ready.timeout,
    }


def check_ports(options: DevOptions) -> None:
    """UsageError when the proxy ports are out of range or equal."""
    for name, port in (("--https-port", options.https_port), ("--http-port", options.http_port)):
        if not 0 < port < 65536:
            raise UsageError(f"{name} {port} is out of range", hint="use a port from 1 to 65535")
    if options.https_port == options.http_port:
        raise UsageError(
            f"--https-port and --http-port are both {options.http_port}",
            hint="give the proxy two different ports",
        )

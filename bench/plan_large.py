"""Median time of `stagecraft plan`'s local work for a large config: 300 services, 30 hosts.

Target (SPEC 8): `plan` for a large config (hundreds of services, tens of hosts) < 1 s.
Prints figures; asserts nothing.

    python bench/plan_large.py [--runs 5] [--services 300] [--hosts 30] [--profile]

A temporary project is generated (a git repository, so the version comes from git
as in a real `plan`): ``--services`` compose services in 10 roles (per role 3 routed
web services built from the project, one PostgreSQL-like accessory with a volume,
workers on public images; workers depend on the previous service of their role and
every fifth one on another role's accessory, which always runs on other hosts), and
``--hosts`` hosts with 2 roles each, so every host runs 60 services (1800 host and
service pairs for 30 hosts). The state each host reports is built in memory: per host,
of every 20 placed services 3 have no container (create), 2 run an older image and 1
an older config (replace), 14 are up to date (keep), and 2 retired services still run
(remove).

Timed, per run (median of ``--runs``, after one warm-up run):

- load: ``stagecraft.yml`` (parse, interpolate, validate) plus the compose model,
  which runs ``docker compose config`` twice (JSON, then YAML for ``x-stagecraft``);
  the compose subprocesses and the ``stagecraft.yml``-only load are shown separately;
- version: ``git rev-parse`` and ``git status`` (the release's version);
- render: ``render_hosts`` (every host's compose file and config hashes);
- plan: ``make_plan`` against the constructed host states;
- text / JSON: ``render_text`` and the ``--json`` document (``json.dumps(indent=2)``).

Not timed: reading each host's state over SSH (one ``docker ps``/``inspect`` round trip
per host, all hosts in parallel, so it costs about one round trip whatever the count),
pending migrations (database connections; the generated project has no database),
and the CLI's start-up (``bench/cli_startup.py``). ``--profile`` adds a cProfile of one
run: where the time goes, by function.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stagecraft.config.loader import LoadedConfig, load_project
from stagecraft.deploy.compose_env import EnvironmentCompose, load_for_environment
from stagecraft.deploy.plan import DeployPlan, make_plan, render_text
from stagecraft.deploy.release import (
    Release,
    Version,
    explicit_version,
    new_release,
    resolve_version,
)
from stagecraft.deploy.render import RenderedHost, render_hosts
from stagecraft.deploy.state.containers import ContainerState, HostState
from stagecraft.runtime import process

TARGET_MS = 1000.0
PROJECT = "bigshop"
ENV = "production"
ROLES = 10
ROLES_PER_HOST = 2
WEB_PER_ROLE = 3
SLOTS = 20
"""Per host, placed services cycle through these slots: which action their state gives."""
CREATE_SLOTS = range(3)
IMAGE_SLOTS = (3, 4)
CONFIG_SLOT = 5
RETIRED_PER_HOST = 2
OLD_RELEASE = "20261001T000000Z-0ld0ld0ld0ld"
OLD_HASH = "sha256:" + "0" * 64


@dataclass(frozen=True)
class Scenario:
    """The shape of the generated project: services in roles, hosts with roles."""

    services: int = 300
    hosts: int = 30
    roles: int = ROLES
    roles_per_host: int = ROLES_PER_HOST

    def __post_init__(self) -> None:
        if self.services % self.roles or self.services // self.roles < WEB_PER_ROLE + 2:
            raise ValueError(f"services must be a multiple of {self.roles}, at least 50")
        if not 0 < self.roles_per_host < self.roles:
            raise ValueError("roles per host must be between 1 and the number of roles - 1")

    @property
    def per_role(self) -> int:
        return self.services // self.roles

    def service(self, index: int) -> str:
        return f"svc{index:03d}"

    def role_services(self, role: int) -> list[str]:
        start = role * self.per_role
        return [self.service(i) for i in range(start, start + self.per_role)]

    def host(self, index: int) -> str:
        return f"h{index:02d}"

    def host_roles(self, index: int) -> list[int]:
        """Roles ``index``, ``index + 3``, ... (mod roles): distinct, never adjacent ones."""
        return [(index + 3 * k) % self.roles for k in range(self.roles_per_host)]

    def address(self, index: int) -> str:
        return f"10.20.{index // 200}.{10 + index % 200}"


# -- the generated project -------------------------------------------------------------


def compose_text(scenario: Scenario) -> str:
    """The canonical compose file: web, worker and accessory services per role."""
    lines = ["services:"]
    for role in range(scenario.roles):
        names = scenario.role_services(role)
        accessory_of_next = scenario.role_services((role + 1) % scenario.roles)[-1]
        for position, name in enumerate(names):
            lines += [f"  {name}:"]
            if position < WEB_PER_ROLE:
                lines += _web_service(name)
            elif position == len(names) - 1:
                lines += _accessory_service(name)
            else:
                lines += _worker_service(name, names[position - 1], position, accessory_of_next)
    lines += ["volumes:"]
    lines += [f"  data-{scenario.role_services(r)[-1]}:" for r in range(scenario.roles)]
    return "\n".join(lines) + "\n"


def _web_service(name: str) -> list[str]:
    return [
        "    build: {context: ./app, args: {SERVICE: " + name + "}}",
        "    init: true",
        "    environment: {PORT: '8080', API_KEY: null, SERVICE_NAME: " + name + "}",
        "    ports: ['8080']",
        "    x-stagecraft:",
        "      healthcheck: {path: /healthz, port: 8080, interval: 1s, timeout: 3s}",
        "      drain: 2s",
    ]


def _accessory_service(name: str) -> list[str]:
    return [
        "    image: ${POSTGRES_IMAGE:-postgres:16-alpine}",
        "    environment: {POSTGRES_DB: " + name + ", POSTGRES_PASSWORD: null}",
        "    expose: ['5432']",
        f"    volumes: ['data-{name}:/var/lib/postgresql/data']",
        "    healthcheck:",
        "      test: [CMD, pg_isready]",
        "      interval: 5s",
    ]


def _worker_service(name: str, previous: str, position: int, accessory: str) -> list[str]:
    depends = [previous, accessory] if position % 5 == 0 else [previous]
    return [
        "    image: registry.example.com/bigshop/worker:1.4.2",
        f"    command: [worker, --queue, {name}, --concurrency, '{position % 4 + 1}']",
        "    environment:",
        f"      QUEUE: {name}",
        "      API_KEY:",
        "      BATCH_SIZE: '100'",
        f"    depends_on: [{', '.join(depends)}]",
        "    stop_grace_period: 20s",
        "    labels: {team: backend}",
    ]


def config_text(scenario: Scenario) -> str:
    """``stagecraft.yml``: one environment with every host, role and route."""
    lines = [
        f"project: {PROJECT}",
        "compose: docker-compose.yml",
        "proxy: {provider: caddy, providers: {caddy: {email: ops@bigshop.example.com}}}",
        "environments:",
        f"  {ENV}:",
        "    hosts:",
    ]
    for index in range(scenario.hosts):
        roles = ", ".join(f"r{r}" for r in scenario.host_roles(index))
        lines.append(
            f"      {scenario.host(index)}: "
            f"{{address: {scenario.address(index)}, user: deploy, roles: [{roles}]}}"
        )
    lines.append("    roles:")
    for role in range(scenario.roles):
        lines.append(f"      r{role}: [{', '.join(scenario.role_services(role))}]")
    lines.append("    routes:")
    for role in range(scenario.roles):
        for name in scenario.role_services(role)[:WEB_PER_ROLE]:
            lines.append(
                f"      {name}: {{host: {name}.bigshop.example.com, service: {name}, port: 8080}}"
            )
    lines += [
        "    tls: acme",
        "    env: {LOG_LEVEL: info, REGION: eu-west}",
        "    secrets: [API_KEY, POSTGRES_PASSWORD]",
        "    secrets_provider: {provider: env}",
        "    deploy: {parallel: 8, health_timeout: 60s, drain: 10s, retain: 5}",
    ]
    return "\n".join(lines) + "\n"


def write_project(root: Path, scenario: Scenario, *, git: bool = True) -> Path:
    """Write the project into ``root`` (committed to git when ``git``); returns the config."""
    (root / "app").mkdir(parents=True, exist_ok=True)
    (root / "app" / "Dockerfile").write_text('FROM busybox:1.36\nCMD ["httpd", "-f"]\n')
    (root / "docker-compose.yml").write_text(compose_text(scenario))
    (root / "stagecraft.yml").write_text(config_text(scenario))
    if git:
        identity = ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
        process.run(["git", "init", "-q", "."], cwd=root)
        process.run(["git", "add", "-A"], cwd=root)
        process.run(["git", *identity, "commit", "-q", "-m", "large project"], cwd=root)
    return root / "stagecraft.yml"


def load(config: Path) -> tuple[LoadedConfig, EnvironmentCompose]:
    """Load the generated project like `stagecraft plan --env production` does.

    With the environment's own compose model only (ADR 0006): no variable of
    this shell changes the project; Compose still gets PATH, HOME and DOCKER_*
    (see ``stagecraft.compose.model``).
    """
    return load_for_environment(config, ENV)


def load_config_only(config: Path) -> LoadedConfig:
    """``stagecraft.yml`` alone (no compose model)."""
    return load_project(config, env=ENV, check_compose=False, environ={})


# -- the states the hosts report -------------------------------------------------------


def actual_states(desired: Mapping[str, RenderedHost]) -> dict[str, HostState]:
    """Per host: containers giving create / replace / keep / remove in the documented mix."""
    states = {}
    for host, rendered in desired.items():
        containers = []
        for index, name in enumerate(sorted(rendered.services)):
            slot = index % SLOTS
            if slot in CREATE_SLOTS:
                continue
            service = rendered.services[name]
            image = service.image
            if slot in IMAGE_SLOTS:
                image = image.rsplit(":", 1)[0] + ":0ld0ld0ld0ld"
            digest = OLD_HASH if slot == CONFIG_SLOT else service.config_hash
            containers.append(_container(name, service.kind, image, digest, "running"))
            if slot == SLOTS - 1:  # an exited container of an older release: ignored
                containers.append(
                    _container(name, service.kind, image, digest, "exited", replica=2)
                )
        for retired in range(RETIRED_PER_HOST):
            image = "registry.example.com/bigshop/legacy:0.9"
            containers.append(_container(f"retired{retired}", "worker", image, OLD_HASH, "running"))
        states[host] = HostState(host, tuple(sorted(containers, key=lambda c: (c.service, c.name))))
    return states


def _container(
    service: str, kind: str, image: str, digest: str, state: str, *, replica: int = 1
) -> ContainerState:
    return ContainerState(
        id=f"{service}{replica}".ljust(64, "0"),
        name=f"{PROJECT}-{ENV}-{service}-{replica}",
        service=service,
        release=OLD_RELEASE,
        version=OLD_RELEASE.split("-", 1)[1],
        image=image,
        image_id="sha256:" + "1" * 64,
        config_hash=digest,
        kind=kind,
        state=state,
        health="healthy" if state == "running" else None,
        started_at="2026-10-01T00:00:00Z",
    )


# -- timing ----------------------------------------------------------------------------


@dataclass
class Run:
    """The seconds of each timed part of one run."""

    parts: dict[str, float] = field(default_factory=dict)
    compose_subprocess: float = 0.0
    config_only: float = 0.0
    plan: DeployPlan | None = None

    @property
    def total(self) -> float:
        return sum(self.parts.values())

    @property
    def load_rest(self) -> float:
        """Load time neither in Compose nor in reading ``stagecraft.yml`` (an estimate)."""
        return max(0.0, self.parts["load"] - self.compose_subprocess - self.config_only)


@contextmanager
def compose_subprocess_time(run: Run) -> Iterator[None]:
    """Set ``run.compose_subprocess``: the wall time during which ``docker compose`` ran.

    Wraps the process gateway (the compose model imports ``run`` at call time) and
    merges overlapping calls, so the figure stays right if the calls run in parallel.
    """
    original = process.run
    spans: list[tuple[float, float]] = []

    def timed_run(argv: Any, *args: Any, **kwargs: Any) -> process.Completed:
        start = time.perf_counter()
        try:
            return original(argv, *args, **kwargs)
        finally:
            if list(argv[:2]) == ["docker", "compose"]:
                spans.append((start, time.perf_counter()))

    process.run = timed_run
    try:
        yield
    finally:
        process.run = original
        run.compose_subprocess = _union(spans)


def _union(spans: list[tuple[float, float]]) -> float:
    """The total length covered by possibly overlapping ``(start, end)`` spans."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def timed(run: Run, part: str, action: Callable[[], Any]) -> Any:
    """Run ``action``, adding its wall time to ``run.parts[part]``; return its result."""
    start = time.perf_counter()
    result = action()
    run.parts[part] = run.parts.get(part, 0.0) + time.perf_counter() - start
    return result


def one_run(config: Path, git: bool) -> Run:
    """Every timed part once; the ``stagecraft.yml``-only load is measured apart."""
    run = Run()
    start = time.perf_counter()
    load_config_only(config)
    run.config_only = time.perf_counter() - start
    with compose_subprocess_time(run):
        loaded, model = timed(run, "load", lambda: load(config))
    version: Version = timed(run, "version", lambda: _version(config.parent, git))
    release: Release = new_release(loaded.config, ENV, version)
    desired: dict[str, RenderedHost] = timed(
        run, "render", lambda: render_hosts(loaded, ENV, release, compose=model)
    )
    actual = actual_states(desired)  # what SSH would bring back: not timed
    plan: DeployPlan = timed(run, "plan", lambda: make_plan(release, desired, actual))
    timed(run, "text", lambda: render_text(plan))
    timed(run, "json", lambda: json.dumps(plan.to_json(), indent=2, default=str))
    run.plan = plan
    return run


def _version(root: Path, git: bool) -> Version:
    return resolve_version(root) if git else explicit_version("0123456789ab")


def report(runs: list[Run], scenario: Scenario, git: bool) -> str:
    """The figures: median ms per part, the total against the target."""

    def median_ms(values: list[float]) -> float:
        return statistics.median(values) * 1000

    plan = runs[-1].plan
    assert plan is not None
    pairs = sum(len(h.services) for h in plan.hosts)
    counts = ", ".join(f"{n} {action}" for action, n in plan.counts().items())
    rows = [
        ("load stagecraft.yml + compose model", median_ms([r.parts["load"] for r in runs])),
        ("  of which docker compose config (x2)", median_ms([r.compose_subprocess for r in runs])),
        ("  of which stagecraft.yml alone", median_ms([r.config_only for r in runs])),
        ("  of which the rest (model, checks)", median_ms([r.load_rest for r in runs])),
        (
            "version (git rev-parse, status)" if git else "version (--version)",
            median_ms([r.parts["version"] for r in runs]),
        ),
        ("render_hosts", median_ms([r.parts["render"] for r in runs])),
        ("make_plan", median_ms([r.parts["plan"] for r in runs])),
        ("render_text", median_ms([r.parts["text"] for r in runs])),
        ("JSON (--json document)", median_ms([r.parts["json"] for r in runs])),
    ]
    total = median_ms([r.total for r in runs])
    verdict = "ok" if total < TARGET_MS else "over target"
    lines = [
        f"plan for {scenario.services} services on {scenario.hosts} hosts "
        f"({pairs} host/service pairs: {counts}); median of {len(runs)} runs",
        f"{'part':<40}{'median ms':>10}{'share':>8}",
    ]
    for name, ms in rows:
        share = f"{ms / total:>7.0%}" if total else ""
        lines.append(f"{name:<40}{ms:>10.1f}{share:>8}")
    lines.append(f"{'total (median of run totals)':<40}{total:>10.1f}")
    lines.append(f"target < {TARGET_MS:.0f} ms: {verdict}")
    lines.append(
        "not included: reading host state over SSH (one round trip per host, all hosts in "
        "parallel), pending migrations (database connections), CLI start-up "
        "(bench/cli_startup.py)"
    )
    return "\n".join(lines)


def profile(config: Path, git: bool, limit: int = 25) -> str:
    """cProfile of one run: the functions with the most cumulative and own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    one_run(config, git)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs().sort_stats("cumulative").print_stats(limit)
    stats.sort_stats("tottime").print_stats(limit)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--services", type=int, default=300)
    parser.add_argument("--hosts", type=int, default=30)
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of a run")
    args = parser.parse_args()
    scenario = Scenario(services=args.services, hosts=args.hosts)
    git = shutil.which("git") is not None
    with tempfile.TemporaryDirectory(prefix="stagecraft-plan-large-") as tmp:
        config = write_project(Path(tmp), scenario, git=git)
        one_run(config, git)  # warm-up: imports, file caches, the compose binary
        runs = [one_run(config, git) for _ in range(args.runs)]
        print(report(runs, scenario, git))
        if args.profile:
            print()
            print(profile(config, git))


if __name__ == "__main__":
    main()

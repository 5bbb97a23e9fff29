"""A typed, read-only view of the compose project, as ``docker compose config`` resolves it.

Stagecraft never parses compose files itself: Compose does the interpolation,
``extends``, ``include``, profiles and anchors, and we read its normalised
output.

Example::

    from pathlib import Path
    from stagecraft.compose.model import discover_compose_file, load_compose

    project = load_compose([discover_compose_file(Path("."))])
    for name, service in project.services.items():
        print(name, service.image, [p.target for p in service.ports])
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from stagecraft.compose.extension import XStagecraft
from stagecraft.config.durations import parse_duration
from stagecraft.errors import ConfigError, ExitCode, PrerequisiteMissing, StagecraftError
from stagecraft.log import event
from stagecraft.suggest import suggestion

logger = logging.getLogger(__name__)

COMPOSE_FILENAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
"""Compose's own discovery order."""

DOCKER_HINT = (
    "install Docker Engine with the Compose v2 plugin: https://docs.docker.com/engine/install/"
)
PLUGIN_HINT = (
    "install the Compose v2 plugin (package docker-compose-plugin, or "
    "https://docs.docker.com/compose/install/linux/)"
)
_STATEFUL_IMAGES = re.compile(
    r"(^|/)(postgres|postgis|mysql|mariadb|mongo|redis|valkey|keydb|memcached|rabbitmq|"
    r"elasticsearch|opensearch|minio|clickhouse|cockroach|nats|kafka|zookeeper|etcd)[^/]*$"
)
# What a compose run may inherit even when the caller passes its own variables.
_RUNTIME_VARS = (
    "PATH",
    "HOME",
    "DOCKER_HOST",
    "DOCKER_CONFIG",
    "DOCKER_CONTEXT",
    "XDG_RUNTIME_DIR",
)


class ComposeError(StagecraftError):
    """``docker compose config`` rejected the compose file(s)."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class ComposeBuild:
    """A service's ``build:`` section (context is absolute)."""

    context: str
    dockerfile: str | None = None
    target: str | None = None
    args: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ComposePort:
    """One ``ports:`` entry."""

    target: int
    published: str | None = None
    host_ip: str | None = None
    protocol: str = "tcp"
    mode: str = "ingress"


@dataclass(frozen=True)
class ComposeVolume:
    """One ``volumes:`` entry: ``type`` is volume, bind, tmpfs, ..."""

    type: str
    target: str
    source: str | None = None
    read_only: bool = False


@dataclass(frozen=True)
class ComposeDependency:
    """One ``depends_on:`` entry."""

    condition: str = "service_started"
    required: bool = True
    restart: bool = False


@dataclass(frozen=True)
class ComposeHealthcheck:
    """A service's ``healthcheck:`` (durations in seconds)."""

    test: tuple[str, ...] = ()
    interval: float | None = None
    timeout: float | None = None
    retries: int | None = None
    start_period: float | None = None
    disable: bool = False


@dataclass(frozen=True)
class ComposeService:
    """One service of the resolved compose model."""

    name: str
    image: str | None
    build: ComposeBuild | None
    ports: tuple[ComposePort, ...]
    volumes: tuple[ComposeVolume, ...]
    depends_on: Mapping[str, ComposeDependency]
    healthcheck: ComposeHealthcheck | None
    labels: Mapping[str, str]
    environment: Mapping[str, str | None]
    profiles: tuple[str, ...]
    x_stagecraft: XStagecraft
    raw: Mapping[str, Any]

    @property
    def replicas(self) -> int:
        """``deploy.replicas`` (or ``scale``), default 1."""
        deploy = self.raw.get("deploy") or {}
        value = deploy.get("replicas", self.raw.get("scale", 1))
        return int(value) if isinstance(value, int) else 1

    @property
    def stop_signal(self) -> str | None:
        """``stop_signal``, if set."""
        value = self.raw.get("stop_signal")
        return str(value) if value else None

    @property
    def stop_grace_period(self) -> float | None:
        """``stop_grace_period`` in seconds, if set."""
        value = self.raw.get("stop_grace_period")
        return _seconds(value)

    def is_stateful(self) -> bool:
        """Has a named volume, or runs a well-known database/cache image."""
        if any(volume.type == "volume" for volume in self.volumes):
            return True
        image = (self.image or "").split("@")[0].rsplit(":", 1)[0]
        return bool(image and _STATEFUL_IMAGES.search(image))

    def kind(self, *, routed: bool) -> str:
        """``x-stagecraft.kind``, or inferred: routed -> web, stateful -> accessory, worker."""
        if self.x_stagecraft.kind:
            return self.x_stagecraft.kind
        if routed:
            return "web"
        return "accessory" if self.is_stateful() else "worker"


@dataclass(frozen=True)
class ComposeProject:
    """The resolved compose project: name, source files, services, and Compose's raw output."""

    name: str
    files: tuple[Path, ...]
    services: Mapping[str, ComposeService]
    raw: Mapping[str, Any]
    project_directory: Path = Path(".")

    @property
    def display_name(self) -> str:
        """The compose file(s) as shown in messages."""
        from stagecraft.config.document import display_path

        return ", ".join(display_path(f) for f in self.files) or "compose file"

    def service(self, name: str) -> ComposeService:
        """The service ``name``; ComposeError naming the known ones if absent."""
        try:
            return self.services[name]
        except KeyError:
            known = ", ".join(sorted(self.services)) or "none"
            raise ComposeError(
                f"{self.display_name}: no service '{name}'{suggestion(name, self.services, n=3)}",
                hint=f"services: {known}",
            ) from None


def discover_compose_file(root: Path) -> Path | None:
    """The compose file Compose itself would pick in ``root`` (see ``COMPOSE_FILENAMES``)."""
    for name in COMPOSE_FILENAMES:
        candidate = root / name
        if candidate.is_file():
            return candidate
    return None


def load_compose(
    files: Sequence[Path],
    *,
    project_directory: Path | None = None,
    project_name: str | None = None,
    environ: Mapping[str, str] | None = None,
    profiles: Sequence[str] = ("*",),
    timeout: float = 60.0,
    dotenv: bool = True,
    resolve_env_files: bool = True,
    extensions: Mapping[str, XStagecraft] | None = None,
    unset_hint: str | None = None,
) -> ComposeProject:
    """Resolve ``files`` with ``docker compose config`` and build the typed model.

    ``project_directory`` defaults to the first file's directory (as Compose
    does); ``profiles`` defaults to every profile, so profiled services are
    visible; ``environ`` (default: this process's environment) is what Compose
    interpolates with. ``dotenv=False`` keeps Compose from reading the project's
    ``.env`` file, ``resolve_env_files=False`` leaves services' ``env_file:``
    entries unread (listed in ``raw["env_file"]``); both are how a deployed
    environment's model is loaded (ADR 0006). ``extensions`` (the validated
    ``x-stagecraft`` blocks of an earlier load of the same files) saves the
    second Compose call. With ``unset_hint``, each variable Compose reports as
    not set is a warning carrying that hint. Raises :class:`ComposeError` with Compose's message,
    :class:`PrerequisiteMissing` without docker or the compose plugin, and
    :class:`~stagecraft.errors.ConfigError` for an invalid ``x-stagecraft`` block
    or YAML aliases that expand past the limits (checked before Compose runs).
    """
    if not files:
        raise ValueError("load_compose needs at least one file")
    paths = tuple(Path(f).absolute() for f in files)
    _refuse_alias_bombs(paths)
    directory = (project_directory or paths[0].parent).absolute()
    argv = ["docker", "compose"]
    if not dotenv:
        argv += ["--env-file", os.devnull]
    for path in paths:
        argv += ["-f", str(path)]
    argv += ["--project-directory", str(directory)]
    if project_name:
        argv += ["--project-name", project_name]
    for profile in profiles:
        argv += ["--profile", profile]
    env = _compose_env(environ)
    config = ["config"] if resolve_env_files else ["config", "--no-env-resolution"]
    as_json = [*argv, *config, "--format", "json"]
    if extensions is not None:
        text, warnings = _run_config(as_json, paths, env, timeout)
        raw = json.loads(text)
        validated = dict(extensions)
    else:
        # Compose's JSON output drops service-level `x-*` keys; its YAML output keeps them.
        # Both are asked for at once: each call costs Compose's whole start-up.
        with ThreadPoolExecutor(max_workers=1) as pool:
            as_yaml = pool.submit(_run_config, [*argv, *config], paths, env, timeout)
            text, warnings = _run_config(as_json, paths, env, timeout)
            raw = json.loads(text)
            found = _service_extensions(as_yaml.result()[0])
        from stagecraft.compose.xcheck import validate_extensions

        validated = validate_extensions(found, paths)
    if unset_hint is not None:
        for name in dict.fromkeys(_UNSET.findall(warnings)):
            event(
                logger,
                logging.WARNING,
                f"compose variable {name} is not set: {unset_hint.format(name=name)}",
                phase="config",
            )
    services_raw: dict[str, Any] = raw.get("services") or {}
    services = {
        name: _service(name, data, validated.get(name, XStagecraft()))
        for name, data in sorted(services_raw.items())
    }
    event(
        logger,
        logging.DEBUG,
        f"compose model: {len(services)} services from {', '.join(str(p) for p in paths)}",
        phase="config",
    )
    return ComposeProject(
        name=str(raw.get("name") or project_name or directory.name),
        files=paths,
        services=MappingProxyType(services),
        raw=MappingProxyType(raw),
        project_directory=directory,
    )


def _refuse_alias_bombs(paths: tuple[Path, ...]) -> None:
    """ConfigError for a file whose YAML aliases expand past the limits (Compose has none)."""
    from stagecraft.config.document import check_yaml_aliases

    issues = [issue for path in paths if (issue := check_yaml_aliases(path)) is not None]
    if issues:
        raise ConfigError(issues)


_UNSET = re.compile(r'The \\?"(\w+)\\?" variable is not set')


def _compose_env(environ: Mapping[str, str] | None) -> dict[str, str]:
    if environ is None:
        return dict(os.environ)
    env = dict(environ)
    for name in _RUNTIME_VARS:
        if name not in env and name in os.environ:
            env[name] = os.environ[name]
    return env


def _run_config(
    argv: list[str], files: tuple[Path, ...], env: dict[str, str], timeout: float
) -> tuple[str, str]:
    from stagecraft.config.document import display_path
    from stagecraft.runtime.process import run

    result = run(argv, env=env, timeout=timeout, check=False, hint=DOCKER_HINT)
    if result.ok:
        return result.stdout, result.stderr
    message = " ".join(line.strip() for line in result.stderr.strip().splitlines() if line.strip())
    if not run(["docker", "compose", "version"], env=env, timeout=timeout, check=False).ok:
        raise PrerequisiteMissing(
            "Docker Compose v2 (`docker compose`) is not installed", hint=PLUGIN_HINT
        )
    shown = ", ".join(display_path(f) for f in files)
    flags = " ".join(f"-f {display_path(f)}" for f in files)
    raise ComposeError(
        f"{shown}: {message or f'docker compose config exited with {result.returncode}'}",
        hint=f"run `docker compose {flags} config` to see the full error",
    )


def _service_extensions(text: str) -> dict[str, dict[str, Any]]:
    """``x-stagecraft`` of each service in Compose's YAML output."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:  # the C parser (ruamel.yaml.clib) when present: twice as fast on large projects
        data = YAML(typ="safe").load(text) or {}
    except YAMLError:  # libyaml's scanner is YAML 1.1; Compose writes 1.2
        data = YAML(typ="safe", pure=True).load(text) or {}
    found: dict[str, dict[str, Any]] = {}
    for name, service in (data.get("services") or {}).items():
        if isinstance(service, dict) and "x-stagecraft" in service:
            found[str(name)] = service["x-stagecraft"]
    return found


def _service(name: str, data: dict[str, Any], extension: XStagecraft) -> ComposeService:
    build = data.get("build")
    return ComposeService(
        name=name,
        image=data.get("image"),
        build=ComposeBuild(
            context=str(build.get("context", ".")),
            dockerfile=build.get("dockerfile"),
            target=build.get("target"),
            args=MappingProxyType({k: str(v) for k, v in (build.get("args") or {}).items()}),
        )
        if isinstance(build, dict)
        else None,
        ports=tuple(_port(p) for p in data.get("ports") or []),
        volumes=tuple(
            ComposeVolume(
                type=str(v.get("type", "volume")),
                target=str(v.get("target", "")),
                source=v.get("source"),
                read_only=bool(v.get("read_only", False)),
            )
            for v in data.get("volumes") or []
        ),
        depends_on=MappingProxyType(
            {
                dep: ComposeDependency(
                    condition=str(spec.get("condition", "service_started")),
                    required=bool(spec.get("required", True)),
                    restart=bool(spec.get("restart", False)),
                )
                for dep, spec in (data.get("depends_on") or {}).items()
            }
        ),
        healthcheck=_healthcheck(data.get("healthcheck")),
        labels=MappingProxyType({k: str(v) for k, v in (data.get("labels") or {}).items()}),
        environment=MappingProxyType(
            {k: None if v is None else str(v) for k, v in (data.get("environment") or {}).items()}
        ),
        profiles=tuple(data.get("profiles") or ()),
        x_stagecraft=extension,
        raw=MappingProxyType(data),
    )


def _port(data: dict[str, Any]) -> ComposePort:
    published = data.get("published")
    return ComposePort(
        target=int(data.get("target", 0)),
        published=str(published) if published not in (None, "") else None,
        host_ip=data.get("host_ip"),
        protocol=str(data.get("protocol", "tcp")),
        mode=str(data.get("mode", "ingress")),
    )


def _healthcheck(data: Any) -> ComposeHealthcheck | None:
    if not isinstance(data, dict):
        return None
    test = data.get("test") or ()
    return ComposeHealthcheck(
        test=tuple(str(t) for t in ([test] if isinstance(test, str) else test)),
        interval=_seconds(data.get("interval")),
        timeout=_seconds(data.get("timeout")),
        retries=data.get("retries"),
        start_period=_seconds(data.get("start_period")),
        disable=bool(data.get("disable", False)),
    )


def _seconds(value: Any) -> float | None:
    if value in (None, ""):
        return None
    try:
        return parse_duration(value)
    except ValueError:
        return None

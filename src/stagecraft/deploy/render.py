"""Per-host compose files of a release, rendered from the canonical compose model.

For each host of an environment (SPEC issue 5 item 1, ADR 0005):

- only the services of the host's roles, in a compose project ``<project>-<env>``;
- images pinned: built services get their release tag, others keep their ``image:``;
- labels ``stagecraft.*`` (project, env, service, release, version, config-hash, kind);
  the config hash is sha256 over the canonical JSON of the rendered service
  without ``image`` and ``labels``, so a new version alone changes only the image;
- the environment's clear ``env`` merged into ``environment``; secrets are only
  named: a service gets the secrets its compose ``environment`` names, through
  ``env_file: <service>.env`` (a 0600 file next to the compose file); their
  keys are dropped from ``environment`` so no value is ever in this file;
- cross-host dependencies: a ``depends_on`` (or ``links``) service placed on
  another host is removed from ``depends_on`` and reached by the same name via
  ``extra_hosts: ["<service>:<that host's private address>"]``; that service's
  ports are published on its own host's private address (and only there);
- dev-only settings removed: ``build``, ``develop``, ``profiles``,
  ``container_name`` (two containers run side by side during a rollout), bind
  mounts of paths inside the project, and ``ports`` (published only for
  cross-host use, see above; routed services are reached through the proxy);
- routed (web) services join the external network ``stagecraft``;
- ``restart: unless-stopped`` unless set.

A host's private address is its ``labels.private_address`` when set, else its
``address``; cross-host wiring needs it to be an IP address.

Example::

    from stagecraft.deploy.render import render_hosts

    rendered = render_hosts(loaded, "production", release)
    print(rendered["web-1"].text())                # the docker-compose.yml for web-1
    rendered["web-1"].services["web"].config_hash  # "sha256:..."
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stagecraft.compose.model import ComposeProject, ComposeService
from stagecraft.config.loader import LoadedConfig
from stagecraft.config.models import EnvironmentConfig
from stagecraft.deploy.release import Release
from stagecraft.errors import ExitCode, StagecraftError

EDGE_NETWORK = "stagecraft"
LABEL_PREFIX = "stagecraft."
PRIVATE_ADDRESS_LABEL = "private_address"
HEADER = (
    "# Rendered by Stagecraft for one host of one release; do not edit.\n"
    "# Secrets are in the <service>.env files next to this one (mode 0600).\n"
)
_DEV_ONLY = ("build", "develop", "profiles", "container_name", "ports", "x-stagecraft")


class RenderError(StagecraftError):
    """A host's compose file cannot be rendered (missing service, cross-host wiring)."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class RenderedService:
    """One service as deployed on one host."""

    name: str
    kind: str
    image: str
    config_hash: str
    secrets: tuple[str, ...]
    definition: Mapping[str, Any]

    @property
    def env_file(self) -> str | None:
        """The secrets file name (relative to the compose file), if the service has secrets."""
        return env_file_name(self.name) if self.secrets else None


@dataclass(frozen=True)
class RenderedHost:
    """The compose project of one host: its services and the whole compose document."""

    host: str
    address: str
    project_name: str
    services: Mapping[str, RenderedService]
    document: Mapping[str, Any]

    def text(self) -> str:
        """The ``docker-compose.yml`` of this host (deterministic: sorted keys)."""
        from ruamel.yaml import YAML

        yaml = YAML(typ="safe", pure=True)
        yaml.default_flow_style = False
        yaml.width = 4096
        buffer = io.StringIO()
        yaml.dump(_plain(self.document), buffer)
        return HEADER + buffer.getvalue()


def env_file_name(service: str) -> str:
    """``<service>.env``: the secrets file of ``service`` in a release directory."""
    return f"{service}.env"


def env_file_text(values: Mapping[str, str]) -> str:
    """The content of a compose ``env_file`` for ``values`` (single-quoted, sorted)."""
    lines = []
    for name in sorted(values):
        value = values[name]
        if "'" in value or "\n" in value:
            escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            lines.append(f'{name}="{escaped}"')
        else:
            lines.append(f"{name}='{value}'")
    return "".join(line + "\n" for line in lines)


def config_hash(definition: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``definition`` without image and labels."""
    body = {k: v for k, v in definition.items() if k not in ("image", "labels")}
    canonical = json.dumps(_plain(body), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def project_name(project: str, env: str) -> str:
    """The compose project name on a host: ``<project>-<env>``."""
    return f"{project}-{env}"


def private_address(environment: EnvironmentConfig, host: str) -> str:
    """The address other hosts reach ``host`` on: ``labels.private_address`` or ``address``."""
    config = environment.hosts[host]
    return str(config.labels.get(PRIVATE_ADDRESS_LABEL) or config.address)


def render_hosts(
    loaded: LoadedConfig,
    env: str,
    release: Release,
    *,
    built: Iterable[str] | None = None,
) -> dict[str, RenderedHost]:
    """Every host of ``env`` rendered for ``release``, in config order.

    ``built`` names the services the release builds (default: from the build plan's
    sources, see :func:`stagecraft.deploy.build.built_services`).
    """
    if built is None:
        from stagecraft.deploy.build import built_services

        built = built_services(loaded)
    names = frozenset(built)
    environment = loaded.environment(env)
    layout = Placement.of(environment)
    needed = _needed_elsewhere(_compose(loaded), layout)
    return {
        host: render_host(loaded, env, release, host, built=names, layout=layout, needed=needed)
        for host in environment.hosts
    }


@dataclass(frozen=True)
class Placement:
    """Where the roles put services: per host its services, per service its hosts."""

    services_on: Mapping[str, tuple[str, ...]]
    hosts_running: Mapping[str, tuple[str, ...]]

    @classmethod
    def of(cls, environment: EnvironmentConfig) -> Placement:
        on = {host: tuple(environment.services_on(host)) for host in environment.hosts}
        running: dict[str, list[str]] = {}
        for host, services in on.items():
            for service in services:
                running.setdefault(service, []).append(host)
        return cls(on, {service: tuple(hosts) for service, hosts in running.items()})


def render_host(
    loaded: LoadedConfig,
    env: str,
    release: Release,
    host: str,
    *,
    built: Iterable[str],
    layout: Placement | None = None,
    needed: Mapping[str, frozenset[str]] | None = None,
) -> RenderedHost:
    """The compose project of ``host`` in ``env`` for ``release``.

    ``layout`` and ``needed`` are computed from the environment when not given
    (:func:`render_hosts` computes them once for every host).
    """
    compose = _compose(loaded)
    environment = loaded.environment(env)
    layout = layout or Placement.of(environment)
    placed = layout.services_on[host]
    for name in placed:
        compose.service(name)
    routed = {route.service for route in environment.routes.values()}
    if needed is None:
        needed = _needed_elsewhere(compose, layout)
    ctx = _Context(
        loaded, env, release, host, environment, frozenset(built), routed, needed, layout
    )
    services = {name: ctx.service(compose.services[name]) for name in sorted(placed)}
    document = _document(compose, ctx, services)
    return RenderedHost(
        host=host,
        address=private_address(environment, host),
        project_name=project_name(release.project, env),
        services=services,
        document=document,
    )


@dataclass(frozen=True)
class _Context:
    """What rendering one host's services needs."""

    loaded: LoadedConfig
    env: str
    release: Release
    host: str
    environment: EnvironmentConfig
    built: frozenset[str]
    routed: set[str]
    needed: Mapping[str, frozenset[str]]
    layout: Placement

    def service(self, service: ComposeService) -> RenderedService:
        """Render ``service`` for this host."""
        name = service.name
        kind = service.kind(routed=name in self.routed)
        image = self.image(service)
        body = {k: v for k, v in service.raw.items() if k not in _DEV_ONLY and v is not None}
        secrets = tuple(n for n in self.environment.secrets if n in service.environment)
        body["environment"] = self.environment_of(service)
        if secrets:
            body["env_file"] = [env_file_name(name)]
        body.setdefault("restart", "unless-stopped")
        self.wire_dependencies(service, body)
        volumes = [v for v in body.get("volumes", []) if not self.dev_bind(v)]
        _set_or_drop(body, "volumes", volumes)
        if kind == "web":
            body["networks"] = {**dict(body.get("networks") or {}), EDGE_NETWORK: None}
        ports = self.published_ports(service)
        _set_or_drop(body, "ports", ports)
        _set_or_drop(body, "environment", body["environment"])
        body["image"] = image
        digest = config_hash(body)
        body["labels"] = {
            **{k: v for k, v in service.labels.items() if not k.startswith(LABEL_PREFIX)},
            **self.labels(name, kind, digest),
        }
        return RenderedService(name, kind, image, digest, secrets, _plain(body))

    def image(self, service: ComposeService) -> str:
        """The release tag of a built service, else its own ``image:``."""
        if service.name in self.built:
            return self.release.image_for(service.name)
        if not service.image:
            raise RenderError(
                f"{_compose(self.loaded).display_name}: service {service.name} has neither "
                "image: nor build:",
                hint=f"give service {service.name} an image: (or a build: section)",
            )
        return service.image

    def environment_of(self, service: ComposeService) -> dict[str, str]:
        """Compose values, then the environment's clear ``env``; secret names removed."""
        secret = set(self.environment.secrets)
        merged: dict[str, str] = {
            k: str(v) for k, v in service.environment.items() if v is not None and k not in secret
        }
        merged.update({k: str(v) for k, v in self.environment.env.items() if k not in secret})
        return merged

    def wire_dependencies(self, service: ComposeService, body: dict[str, Any]) -> None:
        """Drop ``depends_on``/``links`` to services on other hosts; add ``extra_hosts``."""
        here = set(self.layout.services_on[self.host])
        extra = list(body.get("extra_hosts") or [])
        depends = {k: v for k, v in dict(body.get("depends_on") or {}).items() if k in here}
        links = [link for link in body.get("links") or [] if link.split(":")[0] in here]
        for target in _dependencies(service):
            if target in here:
                continue
            address = self.address_of(service.name, target)
            entry = f"{target}:{address}"
            if entry not in extra:
                extra.append(entry)
        _set_or_drop(body, "depends_on", depends)
        _set_or_drop(body, "links", links)
        _set_or_drop(body, "extra_hosts", sorted(extra) if isinstance(extra, list) else extra)

    def address_of(self, user: str, target: str) -> str:
        """The private IP of the first host running ``target``; RenderError if none."""
        hosts = self.layout.hosts_running.get(target, ())
        if not hosts:
            raise RenderError(
                f"environment {self.env}: service {user} depends on {target}, "
                "which no host's roles place",
                hint=f"add {target} to a role of environments.{self.env}.roles",
            )
        address = private_address(self.environment, hosts[0])
        if not _is_ip(address):
            raise RenderError(
                f"environment {self.env}: service {user} on {self.host} reaches {target} on "
                f"{hosts[0]}, whose address {address!r} is not an IP address",
                hint=f"set environments.{self.env}.hosts.{hosts[0]}.labels.private_address "
                "to its private IP",
            )
        return address

    def published_ports(self, service: ComposeService) -> list[dict[str, Any]]:
        """The ports published for users on other hosts, bound to this host's private IP."""
        users = self.needed.get(service.name, frozenset())
        if not users:
            return []
        address = private_address(self.environment, self.host)
        targets = [p.target for p in service.ports] or _exposed(service)
        if not targets:
            raise RenderError(
                f"service {service.name} on {self.host} is used from other hosts "
                f"({', '.join(sorted(users))}) but declares no ports: or expose:",
                hint=f"add expose: [PORT] to service {service.name} in the compose file",
            )
        return [
            {
                "target": target,
                "published": str(target),
                "host_ip": address,
                "protocol": "tcp",
                "mode": "host",
            }
            for target in sorted(set(targets))
        ]

    def dev_bind(self, volume: Any) -> bool:
        """Whether ``volume`` bind-mounts a path inside the project (a source dir)."""
        if not isinstance(volume, Mapping) or volume.get("type") != "bind":
            return False
        source = Path(str(volume.get("source", "")))
        root = self.loaded.root.resolve()
        return source == root or root in source.parents

    def labels(self, name: str, kind: str, digest: str) -> dict[str, str]:
        """The ``stagecraft.*`` labels of ADR 0005."""
        return {
            "stagecraft.config-hash": digest,
            "stagecraft.env": self.env,
            "stagecraft.kind": kind,
            "stagecraft.project": self.release.project,
            "stagecraft.release": self.release.id,
            "stagecraft.service": name,
            "stagecraft.version": self.release.version.value,
        }


def _document(
    compose: ComposeProject, ctx: _Context, services: Mapping[str, RenderedService]
) -> dict[str, Any]:
    """The whole compose document: name, services, the networks and volumes they use."""
    document: dict[str, Any] = {
        "name": project_name(ctx.release.project, ctx.env),
        "services": {name: dict(svc.definition) for name, svc in services.items()},
    }
    used_networks = {n for svc in services.values() for n in svc.definition.get("networks", {})}
    networks = _top_level(compose, "networks", used_networks - {EDGE_NETWORK})
    if EDGE_NETWORK in used_networks:
        networks[EDGE_NETWORK] = {"external": True, "name": EDGE_NETWORK}
    if networks:
        document["networks"] = networks
    used_volumes = {
        str(v["source"])
        for svc in services.values()
        for v in svc.definition.get("volumes", [])
        if isinstance(v, Mapping) and v.get("type") == "volume" and v.get("source")
    }
    volumes = _top_level(compose, "volumes", used_volumes)
    if volumes:
        document["volumes"] = volumes
    return document


def _top_level(compose: ComposeProject, key: str, used: set[str]) -> dict[str, Any]:
    """Top-level ``networks``/``volumes`` entries in ``used``, Compose's default names dropped."""
    found: dict[str, Any] = {}
    for name in sorted(used):
        entry = dict((compose.raw.get(key) or {}).get(name) or {})
        if entry.get("name") == f"{compose.name}_{name}":
            del entry["name"]  # Compose derives it again from the host's project name
        found[name] = {k: v for k, v in entry.items() if v not in ({}, None)} or None
    return found


def _needed_elsewhere(compose: ComposeProject, layout: Placement) -> dict[str, frozenset[str]]:
    """Service -> the services on other hosts that depend on it."""
    needed: dict[str, set[str]] = {}
    for placed in layout.services_on.values():
        here = set(placed)
        for name in here:
            service = compose.services.get(name)
            if service is None:
                continue
            for target in _dependencies(service):
                if target not in here:
                    needed.setdefault(target, set()).add(name)
    return {name: frozenset(users) for name, users in needed.items()}


def _dependencies(service: ComposeService) -> list[str]:
    """Services ``service`` talks to by name: its ``depends_on`` and ``links``."""
    names = list(service.depends_on)
    for link in service.raw.get("links") or []:
        target = str(link).split(":")[0]
        if target not in names:
            names.append(target)
    return sorted(names)


def _exposed(service: ComposeService) -> list[int]:
    """Container ports from ``expose:`` (single ports; ranges are not published)."""
    ports = []
    for value in service.raw.get("expose") or []:
        text = str(value).split("/")[0]
        if text.isdigit():
            ports.append(int(text))
    return ports


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _set_or_drop(body: dict[str, Any], key: str, value: Any) -> None:
    """``body[key] = value``, or no key at all when ``value`` is empty."""
    if value:
        body[key] = value
    else:
        body.pop(key, None)


def _plain(value: Any) -> Any:
    """``value`` with mappings turned into sorted dicts and tuples into lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _compose(loaded: LoadedConfig) -> ComposeProject:
    if loaded.compose is None:
        raise RenderError(f"{loaded.path}: no compose project loaded", hint="check `compose:`")
    return loaded.compose

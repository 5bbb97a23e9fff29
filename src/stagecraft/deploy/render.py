"""Per-host compose files of a release, rendered from the canonical compose model.

For each host of an environment (SPEC issue 5 item 1, ADR 0005):

- only the services of the host's roles, in a compose project ``<project>-<env>``;
- images pinned: built services get their release tag, others keep their ``image:``;
- labels ``stagecraft.*`` (project, env, service, release, version, config-hash, kind);
  the config hash is sha256 over the canonical JSON of the rendered service
  without ``image`` and ``labels``, so a new version alone changes only the image;
- rendered from the environment's own compose model
  (:mod:`stagecraft.deploy.compose_env`: the environment's clear ``env`` and a
  placeholder per declared secret, never the local shell, ``.env`` or
  ``env_file:``), with the environment's clear ``env`` merged into
  ``environment``; a key of ``environment`` whose value holds a secret
  (``POSTGRES_PASSWORD:``, or ``DATABASE_URL: postgres://app:${POSTGRES_PASSWORD}@db``)
  is moved to ``env_file: <service>.env`` (a 0600 file next to the compose
  file, written from a template by :func:`env_file_values`), so no secret value
  is ever in this file; a secret anywhere else in a service is a RenderError;
- ``env_file:`` entries (local files) are not deployed: dropped with a warning;
- per used secret a keyed digest (label ``stagecraft.secrets``,
  :mod:`stagecraft.deploy.secret_digest`) so a rotated secret replaces the service;
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
``address`` when that is a private IP (RFC 1918, CGNAT/Tailscale 100.64/10,
IPv6 ULA). Cross-host wiring needs one: a port published on a public address is
open to the internet (Docker's published ports bypass ufw), so a cross-host
dependency of a host without a private address is a RenderError naming the
service, the hosts and both fixes.

When the environment has a network provider (``network:``, a mesh such as
Tailscale), a host's private address is its mesh address, recorded by
``stagecraft hosts bootstrap`` in ``.stagecraft/network/<env>.yml``
(:class:`MeshAddresses`, ADR 0012), never its labels or public address; a
host not recorded there has not joined yet, and wiring to it is a RenderError
that says to run bootstrap.

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
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stagecraft import log
from stagecraft.compose.model import ComposeProject, ComposeService
from stagecraft.config.loader import LoadedConfig
from stagecraft.config.models import EnvironmentConfig
from stagecraft.config.network_state import read_network_state
from stagecraft.deploy.compose_env import (
    EnvironmentCompose,
    Template,
    describe,
    environment_compose,
    resolve,
)
from stagecraft.deploy.release import Release
from stagecraft.deploy.secret_digest import LABEL as SECRETS_LABEL
from stagecraft.deploy.secret_digest import label_value
from stagecraft.deploy.state.layout import host_address
from stagecraft.errors import ExitCode, StagecraftError

logger = logging.getLogger(__name__)

EDGE_NETWORK = "stagecraft"
LABEL_PREFIX = "stagecraft."
PRIVATE_ADDRESS_LABEL = "private_address"
HEADER = (
    "# Rendered by Stagecraft for one host of one release; do not edit.\n"
    "# Secrets are in the <service>.env files next to this one (mode 0600).\n"
)
_DEV_ONLY = (
    "build",
    "develop",
    "profiles",
    "container_name",
    "ports",
    "x-stagecraft",
    "env_file",
)


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
    secret_env: Mapping[str, Template] = field(default_factory=dict, repr=False)
    secret_digests: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def env_file(self) -> str | None:
        """The secrets file name (relative to the compose file), if the service has secrets."""
        return env_file_name(self.name) if self.secret_env else None


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
        return yaml_text(self.document, HEADER)


def yaml_text(document: Mapping[str, Any], header: str) -> str:
    """``document`` as block YAML with sorted keys after ``header`` (deterministic)."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096
    buffer = io.StringIO()
    yaml.dump(plain_data(document), buffer)
    return header + buffer.getvalue()


def env_file_name(service: str) -> str:
    """``<service>.env``: the secrets file of ``service`` in a release directory."""
    return f"{service}.env"


_ENV_FILE_ESCAPES = str.maketrans(
    {"\\": "\\\\", '"': '\\"', "$": "\\$", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
)


def env_file_text(values: Mapping[str, str]) -> str:
    """The content of a compose ``env_file`` for ``values`` (sorted, read back byte for byte).

    Every value is double-quoted with ``\\``, ``"``, ``$``, newline, CR and tab
    escaped: Compose's env-file parser interpolates ``$VAR`` in unquoted and
    double-quoted values and single quotes cannot hold a ``'``. A NUL cannot be
    in an environment variable at all and is refused.
    """
    lines = []
    for name in sorted(values):
        value = values[name]
        if "\0" in value:
            raise RenderError(
                f"the value of {name} contains a NUL byte, which no environment variable can hold",
                hint=f"check the value of {name} in the secrets provider",
            )
        lines.append(f'{name}="{value.translate(_ENV_FILE_ESCAPES)}"')
    return "".join(line + "\n" for line in lines)


_GUARDED_LENGTH = 6


def check_no_secret_values(text: str, values: Iterable[str], *, host: str) -> None:
    """RenderError when a secret value (of at least 6 characters) appears in ``text``.

    The last line of defence for the world-readable compose file: interpolation
    cannot put one there (see :mod:`stagecraft.deploy.compose_env`), but a value
    typed in clear in the compose file that equals a secret would be.
    """
    for value in values:
        if len(value) >= _GUARDED_LENGTH and value in text:
            raise RenderError(
                f"the compose file for {host} would contain the value of a declared secret",
                hint="a setting of the compose file holds a secret's value in clear: replace it "
                "with ${NAME} in environment: (or rotate the secret if that was deliberate)",
            )


def env_file_values(service: RenderedService, secrets: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``service``'s env file: its templates with the secrets' values.

    A secret the provider did not resolve is a RenderError naming it (never an
    empty value written silently).
    """
    missing = sorted({n for n in service.secrets if n not in secrets})
    if missing:
        raise RenderError(
            f"service {service.name}: no value for secret {', '.join(missing)}",
            hint="check `stagecraft secrets check --env ENV`",
        )
    return {key: resolve(template, secrets) for key, template in service.secret_env.items()}


def config_hash(definition: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``definition`` without image and labels."""
    body = {k: v for k, v in definition.items() if k not in ("image", "labels")}
    canonical = json.dumps(plain_data(body), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def project_name(project: str, env: str) -> str:
    """The compose project name on a host: ``<project>-<env>``."""
    return f"{project}-{env}"


_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)


@dataclass(frozen=True)
class MeshAddresses:
    """The mesh IPv4 address of each host that joined the environment's network provider."""

    env: str
    provider: str
    addresses: Mapping[str, str]

    def address(self, host: str, why: str) -> str:
        """The mesh address of ``host``; RenderError (run bootstrap) when it has not joined."""
        found = self.addresses.get(host)
        if found is None:
            raise RenderError(
                f"environment {self.env}: {why}, but host {host} has not joined the "
                f"{self.provider} mesh: run `stagecraft hosts bootstrap --env {self.env}`",
                hint=f"`stagecraft hosts bootstrap --env {self.env}` joins every host and records "
                f"their mesh addresses in .stagecraft/network/{self.env}.yml",
            )
        return found


def mesh_addresses(loaded: LoadedConfig, env: str) -> MeshAddresses | None:
    """The mesh addresses of ``env``'s hosts when it has a network provider, else None.

    Read from ``.stagecraft/network/<env>.yml``; a file written for another
    provider counts as no host joined.
    """
    selection = loaded.config.network_for(env)
    if selection is None:
        return None
    state = read_network_state(loaded.root, env)
    found = (
        {host: record.address for host, record in state.hosts.items()}
        if state is not None and state.provider == selection.provider
        else {}
    )
    return MeshAddresses(env, selection.provider, found)


def private_address(environment: EnvironmentConfig, host: str) -> str:
    """The address other hosts reach ``host`` on: ``labels.private_address`` or ``address``."""
    config = environment.hosts[host]
    return str(config.labels.get(PRIVATE_ADDRESS_LABEL) or host_address(environment, host))


def is_private_ip(value: str) -> bool:
    """Whether ``value`` is an IP address of a private network (not reachable from the internet).

    >>> is_private_ip("10.0.0.5"), is_private_ip("100.101.102.103"), is_private_ip("203.0.113.10")
    (True, True, False)
    """
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return any(address in net for net in _PRIVATE_NETWORKS if net.version == address.version)


def wiring_address(
    environment: EnvironmentConfig,
    env: str,
    host: str,
    why: str,
    mesh: MeshAddresses | None = None,
) -> str:
    """The private IP that cross-host traffic to ``host`` uses; RenderError when it has none.

    ``why`` says what needs it (``"service db on data-1 is used from web (web-1)"``).
    With ``mesh`` (the environment has a network provider) it is the host's
    mesh address, never its labels or its public address.
    """
    if mesh is not None:
        return mesh.address(host, why)
    config = environment.hosts[host]
    label = config.labels.get(PRIVATE_ADDRESS_LABEL)
    fix_label = f"environments.{env}.hosts.{host}.labels.private_address"
    if label:
        if not _is_ip(str(label)):
            raise RenderError(
                f"environment {env}: {why}, but {fix_label} {label!r} is not an IP address",
                hint=f"set {fix_label} to the private IP of {host}",
            )
        return str(label)
    address = host_address(environment, host)
    if is_private_ip(address):
        return address
    what = "a public address" if _is_ip(address) else "a host name"
    raise RenderError(
        f"environment {env}: {why}, but {host} has no private address "
        f"(its address {address} is {what}, and a published port there would be "
        "open to the internet: Docker's published ports bypass ufw)",
        hint=f"set {fix_label} to its private IP (same network as the other hosts), or put "
        f"{host} and the hosts using it on a private network and use those addresses",
    )


def render_hosts(
    loaded: LoadedConfig,
    env: str,
    release: Release,
    *,
    built: Iterable[str] | None = None,
    compose: EnvironmentCompose | None = None,
    secret_digests: Mapping[str, str] | None = None,
    mesh: MeshAddresses | None = None,
) -> dict[str, RenderedHost]:
    """Every host of ``env`` rendered for ``release``, in config order.

    ``built`` names the services the release builds (default: from the build plan's
    sources, see :func:`stagecraft.deploy.build.built_services`). ``compose`` is
    the environment's model (loaded when not given, see
    :func:`~stagecraft.deploy.compose_env.environment_compose`); ``secret_digests``
    (per declared secret, :func:`~stagecraft.deploy.secret_digest.digests`) label
    each service with the digests of the secrets it uses. ``mesh`` is where the
    hosts are on the environment's mesh (default: :func:`mesh_addresses`).
    """
    if built is None:
        from stagecraft.deploy.build import built_services

        built = built_services(loaded)
    names = frozenset(built)
    environment = loaded.environment(env)
    model = compose if compose is not None else environment_compose(loaded, env)
    layout = Placement.of(environment)
    needed = _needed_elsewhere(model.project, layout)
    _warn_env_files(model.project, layout, env)
    if mesh is None:
        mesh = mesh_addresses(loaded, env)
    return {
        host: render_host(
            loaded,
            env,
            release,
            host,
            built=names,
            layout=layout,
            needed=needed,
            compose=model,
            secret_digests=secret_digests,
            mesh=mesh,
        )
        for host in environment.hosts
    }


def _warn_env_files(compose: ComposeProject, layout: Placement, env: str) -> None:
    """One warning per deployed service whose ``env_file:`` is left behind."""
    for name in sorted(layout.hosts_running):
        service = compose.services.get(name)
        files = service.raw.get("env_file") if service else None
        if not files:
            continue
        paths = ", ".join(str(f.get("path") if isinstance(f, Mapping) else f) for f in files)
        log.event(
            logger,
            logging.WARNING,
            f"service {name}: env_file {paths} is not deployed to {env} (local files never "
            f"reach hosts); set what {env} needs in environments.{env}.env or .secrets",
            phase="render",
        )


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
    compose: EnvironmentCompose | None = None,
    secret_digests: Mapping[str, str] | None = None,
    mesh: MeshAddresses | None = None,
) -> RenderedHost:
    """The compose project of ``host`` in ``env`` for ``release``.

    ``layout``, ``needed``, ``compose`` and ``mesh`` are computed from the
    environment when not given (:func:`render_hosts` computes them once for every host).
    """
    model = compose if compose is not None else environment_compose(loaded, env)
    project = model.project
    environment = loaded.environment(env)
    layout = layout or Placement.of(environment)
    placed = layout.services_on[host]
    for name in placed:
        project.service(name)
    routed = {route.service for route in environment.routes.values()}
    if needed is None:
        needed = _needed_elsewhere(project, layout)
    if mesh is None:
        mesh = mesh_addresses(loaded, env)
    ctx = _Context(
        loaded,
        env,
        release,
        host,
        environment,
        frozenset(built),
        routed,
        needed,
        layout,
        model,
        secret_digests,
        mesh,
    )
    services = {name: ctx.service(project.services[name]) for name in sorted(placed)}
    document = _document(project, ctx, services)
    top = {k: v for k, v in document.items() if k != "services"}
    for path, secret in model.secrets_in(top) if model.holds_secret(top) else ():
        raise RenderError(
            f"environment {env}: {'.'.join(str(p) for p in path)} uses secret {secret}; "
            "the compose file on the hosts is world-readable",
            hint=f"give that setting a clear value in environments.{env}.env",
        )
    return RenderedHost(
        host=host,
        address=(mesh.addresses.get(host) if mesh is not None else None)
        or private_address(environment, host),
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
    compose: EnvironmentCompose
    digests: Mapping[str, str] | None
    mesh: MeshAddresses | None

    def service(self, service: ComposeService) -> RenderedService:
        """Render ``service`` for this host."""
        name = service.name
        kind = service.kind(routed=name in self.routed)
        image = self.image(service)
        body = {k: v for k, v in service.raw.items() if k not in _DEV_ONLY and v is not None}
        clear, secret_env = self.environment_of(service)
        body["environment"] = clear
        self.refuse_secrets_outside_environment(name, body)
        secrets = tuple(
            sorted({p.name for t in secret_env.values() for p in t if not isinstance(p, str)})
        )
        if secret_env:
            body["env_file"] = [env_file_name(name)]
        body.setdefault("restart", "unless-stopped")
        self.wire_dependencies(service, body)
        volumes = [v for v in body.get("volumes", []) if not self.dev_bind(v)]
        set_or_drop(body, "volumes", volumes)
        if kind == "web":
            body["networks"] = {**dict(body.get("networks") or {}), EDGE_NETWORK: None}
        ports = self.published_ports(service)
        set_or_drop(body, "ports", ports)
        set_or_drop(body, "environment", body["environment"])
        body["image"] = image
        templates = {key: describe(t) for key, t in sorted(secret_env.items())}
        digest = config_hash({**body, "x-secret-env": templates})
        used = {n: self.digests[n] for n in secrets if n in self.digests} if self.digests else {}
        body["labels"] = {
            **{k: v for k, v in service.labels.items() if not k.startswith(LABEL_PREFIX)},
            **self.labels(name, kind, digest),
            **({SECRETS_LABEL: label_value(used)} if used else {}),
        }
        return RenderedService(
            name, kind, image, digest, secrets, plain_data(body), dict(secret_env), used
        )

    def image(self, service: ComposeService) -> str:
        """The release tag of a built service, else its own ``image:``."""
        if service.name in self.built:
            return self.release.image_for(service.name)
        if not service.image:
            raise RenderError(
                f"{self.compose.project.display_name}: service {service.name} has neither "
                "image: nor build:",
                hint=f"give service {service.name} an image: (or a build: section)",
            )
        return service.image

    def environment_of(self, service: ComposeService) -> tuple[dict[str, str], dict[str, Template]]:
        """The clear variables and the secret-bearing ones (templates) of ``service``."""
        return split_environment(service, self.compose, self.environment)

    def refuse_secrets_outside_environment(self, name: str, body: Mapping[str, Any]) -> None:
        """A secret interpolated anywhere but ``environment`` would be written in clear."""
        refuse_secrets_outside_environment(
            self.compose,
            self.env,
            name,
            body,
            why="and read it there (the compose file on the hosts is world-readable; env files "
            "are 0600)",
        )

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
        set_or_drop(body, "depends_on", depends)
        set_or_drop(body, "links", links)
        set_or_drop(body, "extra_hosts", sorted(extra) if isinstance(extra, list) else extra)

    def address_of(self, user: str, target: str) -> str:
        """The private IP of the first host running ``target``; RenderError if none."""
        hosts = self.layout.hosts_running.get(target, ())
        if not hosts:
            raise RenderError(
                f"environment {self.env}: service {user} depends on {target}, "
                "which no host's roles place",
                hint=f"add {target} to a role of environments.{self.env}.roles",
            )
        why = f"service {user} on {self.host} depends on {target} on {hosts[0]}"
        return wiring_address(self.environment, self.env, hosts[0], why, self.mesh)

    def published_ports(self, service: ComposeService) -> list[dict[str, Any]]:
        """The ports published for users on other hosts, bound to this host's private (mesh) IP."""
        users = self.needed.get(service.name, frozenset())
        if not users:
            return []
        where = ", ".join(
            f"{user} ({', '.join(h for h in self.layout.hosts_running[user] if h != self.host)})"
            for user in sorted(users)
        )
        why = f"service {service.name} on {self.host} is used from {where}"
        address = wiring_address(self.environment, self.env, self.host, why, self.mesh)
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


def refuse_secrets_outside_environment(
    compose: EnvironmentCompose, env: str, name: str, body: Mapping[str, Any], *, why: str
) -> None:
    """RenderError when a secret is interpolated anywhere in ``body`` but ``environment``.

    Anywhere else it would be written in clear into a file on the hosts; ``why``
    ends the hint with how the driver passes a variable instead.
    """
    rest = {k: v for k, v in body.items() if k != "environment"}
    if not compose.holds_secret(rest):
        return
    for path, secret in compose.secrets_in(rest):
        where = ".".join(str(part) for part in path)
        raise RenderError(
            f"environment {env}: service {name}: {where} uses secret {secret}; "
            "a secret can only reach a container through its environment",
            hint=f"pass {secret} as a variable in services.{name}.environment {why}",
        )


def split_environment(
    service: ComposeService, compose: EnvironmentCompose, environment: EnvironmentConfig
) -> tuple[dict[str, str], dict[str, Template]]:
    """The clear variables and the secret-bearing ones (templates) of ``service``.

    Compose's values, then the environment's clear ``env`` on top (a clear
    value replaces a compose value, secret or not); a declared secret's own
    name is never clear. Every value is written as ``docker compose config``
    writes its own (a literal ``$`` as ``$$``): Compose on the host, and
    ``docker stack deploy``, interpolate the file again. Shared by both
    drivers' renderers (this module and :mod:`stagecraft.deploy.swarm.stack`).
    """
    secret = set(environment.secrets)
    clear: dict[str, str] = {}
    templates: dict[str, Template] = {}
    for key, value in service.environment.items():
        if value is None:
            continue
        template = compose.template(value)
        if template is not None:
            templates[key] = template
        else:
            clear[key] = value
    for key, value in environment.env.items():
        if key not in secret:
            clear[key] = str(value).replace("$", "$$")
            templates.pop(key, None)
    return clear, templates


def _document(
    compose: ComposeProject, ctx: _Context, services: Mapping[str, RenderedService]
) -> dict[str, Any]:
    """The whole compose document: name, services, the networks and volumes they use."""
    document: dict[str, Any] = {
        "name": project_name(ctx.release.project, ctx.env),
        "services": {name: dict(svc.definition) for name, svc in services.items()},
    }
    used_networks = {n for svc in services.values() for n in svc.definition.get("networks", {})}
    networks = top_level(compose, "networks", used_networks - {EDGE_NETWORK})
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
    volumes = top_level(compose, "volumes", used_volumes)
    if volumes:
        document["volumes"] = volumes
    return document


def top_level(compose: ComposeProject, key: str, used: set[str]) -> dict[str, Any]:
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


def set_or_drop(body: dict[str, Any], key: str, value: Any) -> None:
    """``body[key] = value``, or no key at all when ``value`` is empty."""
    if value:
        body[key] = value
    else:
        body.pop(key, None)


def plain_data(value: Any) -> Any:
    """``value`` with mappings turned into sorted dicts and tuples into lists."""
    if isinstance(value, Mapping):
        return {str(k): plain_data(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [plain_data(v) for v in value]
    return value

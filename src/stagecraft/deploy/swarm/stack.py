"""The Swarm stack file of a release, rendered from the environment's compose model.

``driver: swarm`` (issue 14, ADR 0017 item 3) deploys a release with
``docker stack deploy -c stack.yml <project>-<env>``. This module renders that
file from the same model as the SSH driver's per-host files
(:mod:`stagecraft.deploy.render`) and with the same rules where they apply:

- ``version: "3.8"`` (older ``docker stack deploy`` requires a version; there is
  no ``name:`` in that schema: the stack's name is given on the command line);
- only the services the environment's roles place, images pinned to the
  release (built services) or their own ``image:``;
- per service, the keys ``docker stack deploy`` honours (``_KEPT``); the others
  are dropped, with one warning per service naming the unexpected ones
  (``ports``, ``build``, ``depends_on``, ``restart``, ... are expected: Swarm
  routes by the overlay, builds nothing, orders nothing and restarts by
  ``deploy.restart_policy``); bind mounts of paths inside the project are
  dropped as for SSH;
- the clear environment of :func:`~stagecraft.deploy.render.split_environment`;
  a variable that holds a secret becomes a Swarm secret mounted at
  ``/run/secrets/<VAR>`` and the variable ``<VAR>_FILE`` naming that file
  (Docker's ``_FILE`` convention: the image, or the app, reads the file; the
  variable itself is not set). The secret is external, created by the driver
  under a versioned name ``<stack>_<service>_<VAR>_<digest>`` (at most 64
  characters), where the digest is an HMAC of the resolved value under the
  environment's key (:mod:`stagecraft.deploy.secret_digest`): a rotated value
  is a new secret, which updates the service. A secret anywhere but
  ``environment`` is a RenderError;
- values are written as Compose's own output writes them: a literal ``$`` is
  ``$$``, which ``docker stack deploy`` (it interpolates) reads back as ``$``;
- every service is on the environment's attachable overlay network
  (``default``, external, created by ``hosts bootstrap``), where it is reached
  by its name (``db``) or its stack name (``<stack>_db``);
- placement: ``node.labels.stagecraft.role.<role>==true`` for the one role that
  places the service; ``replicas`` from ``deploy.replicas``, else one per host
  of that role (one for a stateful service); a service with a named volume (or
  an accessory) must have a role of one host, since its data lives on that node;
- ``update_config``/``rollback_config``: one task at a time, ``start-first``
  (``stop-first`` for accessories and services with named volumes: two
  databases must never share a data directory), rolled back on failure;
  ``endpoint_mode: dnsrr`` when the nodes have no IPVS;
- a healthcheck for every web service (Swarm moves traffic to a new task once
  it is healthy): the compose ``healthcheck:``, else ``x-stagecraft.healthcheck``
  as ``wget`` or ``curl`` in the container (the image needs one of them);
- the ``stagecraft.*`` labels of ADR 0005 on the service (``deploy.labels``);
  the containers carry those that change only with the configuration
  (project, env, service, kind, config-hash): a release label there would
  replace every task, databases included, at every deploy;
- the edge proxy, when the environment has routes, as the global service
  ``stagecraft-edge`` on the nodes labelled ``stagecraft.edge``, publishing its
  ports in host mode, routing to ``<stack>_<service>`` and configured by a
  Swarm config named after its content (:meth:`ProxyProvider.swarm_service
  <stagecraft.providers.proxy.ProxyProvider.swarm_service>`).

Example::

    from stagecraft.deploy.swarm.stack import STACK_FILE, render_stack

    stack = render_stack(loaded, "production", release, secrets=values, key=key)
    (directory / STACK_FILE).write_text(stack.text())
    for name, content in stack.files.items():       # edge-config.json
        (directory / name).write_text(content)
    stack.secret_values(values)  # {"fleet-production_web_DATABASE_URL_3f2a...": "postgres://..."}
    stack.services["web"].replicas  # 2
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stagecraft import log
from stagecraft.compose.model import ComposeProject, ComposeService
from stagecraft.config.durations import format_duration
from stagecraft.config.loader import LoadedConfig
from stagecraft.config.models import EnvironmentConfig
from stagecraft.deploy.compose_env import (
    EnvironmentCompose,
    SecretRef,
    Template,
    describe,
    environment_compose,
    resolve,
)
from stagecraft.deploy.release import Release
from stagecraft.deploy.render import (
    LABEL_PREFIX,
    Placement,
    RenderError,
    config_hash,
    plain_data,
    project_name,
    refuse_secrets_outside_environment,
    set_or_drop,
    split_environment,
    top_level,
    yaml_text,
)
from stagecraft.deploy.swarm.cluster import EDGE_LABEL, ROLE_LABEL

logger = logging.getLogger(__name__)

STACK_FILE = "stack.yml"
EDGE_SERVICE = "stagecraft-edge"
EDGE_CONFIG_FILE = "edge-config.json"
STACK_VERSION = "3.8"
MAX_NAME = 64
"""Swarm's limit on the name of a secret or a config."""
UNRESOLVED = "unresolved00"
"""The digest of a secret rendered without values (``plan``)."""
SECRETS_DIR = "/run/secrets"
HEADER = (
    "# Rendered by Stagecraft for one release of one environment "
    "(docker stack deploy); do not edit.\n"
    "# Secrets are external Swarm secrets with versioned names: no value is in this file.\n"
)

# The service keys `docker stack deploy` honours (the 3.8 schema, minus what Swarm ignores).
# fmt: off
_KEPT = frozenset({
    "image", "command", "entrypoint", "environment", "healthcheck", "labels", "deploy",
    "networks", "volumes", "stop_grace_period", "stop_signal", "user", "working_dir", "init",
    "tmpfs", "ulimits", "cap_add", "cap_drop", "hostname", "dns", "dns_search", "extra_hosts",
    "logging", "read_only", "stdin_open", "tty", "sysctls",
})
# Dropped without a warning: what a compose file for a laptop or the SSH driver has anyway,
# plus develop (dev-only, as for SSH), expose (a task's every port is reachable on the
# overlay) and scale (honoured: the replicas when deploy.replicas is not set).
_EXPECTED_DROPS = frozenset({
    "build", "depends_on", "restart", "ports", "x-stagecraft", "env_file", "profiles",
    "container_name", "links", "develop", "expose", "scale",
})
# fmt: on
# Labels that change only with the configuration (the others are on the service only).
_CONTAINER_LABELS = (
    "stagecraft.config-hash",
    "stagecraft.env",
    "stagecraft.kind",
    "stagecraft.project",
    "stagecraft.service",
)
_MONITOR = "5s"


def stack_name(project: str, env: str) -> str:
    """The stack's name (``docker stack deploy ... <name>``): ``<project>-<env>``."""
    return project_name(project, env)


def network_name(project: str, env: str) -> str:
    """The environment's attachable overlay network (created by ``hosts bootstrap``)."""
    return f"stagecraft_{project}_{env}"


def upstream_host(stack: str, service: str) -> str:
    """``<stack>_<service>``: the DNS name of a stack's service on the overlay."""
    return f"{stack}_{service}"


def swarm_object_name(prefix: str, suffix: str) -> str:
    """``<prefix>_<suffix>`` cut to Swarm's 64 characters, the suffix (a digest) kept whole.

    A long prefix keeps its first characters and a hash of the whole, so two
    long names that share a beginning stay distinct.

    >>> swarm_object_name("shop-prod_web_API_KEY", "0123456789ab")
    'shop-prod_web_API_KEY_0123456789ab'
    >>> len(swarm_object_name("x" * 80, "0123456789ab"))
    64
    """
    name = f"{prefix}_{suffix}"
    if len(name) <= MAX_NAME:
        return name
    tag = hashlib.sha256(prefix.encode()).hexdigest()[:8]
    room = MAX_NAME - len(suffix) - len(tag) - 2
    return f"{prefix[:room]}-{tag}_{suffix}"


@dataclass(frozen=True)
class StackService:
    """One app service of the stack: what the driver ships, waits for and reports."""

    name: str
    kind: str
    image: str
    replicas: int | None  # None for a global service
    config_hash: str
    secrets: tuple[str, ...]  # the declared secrets it uses
    secret_env: Mapping[str, Template] = field(repr=False)  # VAR -> template
    definition: Mapping[str, Any]
    role: str = ""  # the role whose nodes run it


@dataclass(frozen=True)
class Stack:
    """The stack of one release: its file, the files next to it, its secrets by name."""

    name: str
    network: str
    document: Mapping[str, Any]
    services: Mapping[str, StackService]  # app services (not the edge)
    secret_refs: Mapping[str, tuple[str, str]]  # Swarm secret name -> (service, VAR)
    files: Mapping[str, str]  # written next to the stack file: name -> content

    def text(self) -> str:
        """The stack file (deterministic: sorted keys)."""
        return yaml_text(self.document, HEADER)

    def secret_values(self, values: Mapping[str, str]) -> dict[str, str]:
        """Per Swarm secret name, its content: the variable's template with ``values``.

        ``values`` maps declared secret names to their values; a missing one is
        a RenderError naming it and the service.
        """
        found: dict[str, str] = {}
        for name, (service, var) in sorted(self.secret_refs.items()):
            template = self.services[service].secret_env[var]
            _require_values(template, values, service, var, None)
            found[name] = resolve(template, values)
        return found

    def config_hashes(self) -> dict[str, str]:
        """Per service (the edge included), the config hash its containers are labelled with."""
        found = {name: service.config_hash for name, service in self.services.items()}
        edge = self.document["services"].get(EDGE_SERVICE)
        if edge is not None:
            found[EDGE_SERVICE] = str(edge["labels"]["stagecraft.config-hash"])
        return found

    def images(self) -> dict[str, str]:
        """Per service (the edge included), the image its tasks run."""
        found = {name: service.image for name, service in self.services.items()}
        edge = self.document["services"].get(EDGE_SERVICE)
        if edge is not None:
            found[EDGE_SERVICE] = str(edge["deploy"]["labels"]["stagecraft.image"])
        return found

    def placement(self) -> dict[str, str]:
        """Per service, the role whose nodes run it (``""`` for the edge: the edge nodes)."""
        found = {name: service.role for name, service in self.services.items()}
        if EDGE_SERVICE in self.document["services"]:
            found[EDGE_SERVICE] = ""
        return found


def render_stack(
    loaded: LoadedConfig,
    env: str,
    release: Release,
    *,
    compose: EnvironmentCompose | None = None,
    built: Iterable[str] | None = None,
    secrets: Mapping[str, str] | None = None,
    key: bytes | None = None,
    ipvs: bool = False,
    image_ids: Mapping[str, str] | None = None,
) -> Stack:
    """The stack of ``release`` in ``env`` (see the module docstring for the rules).

    ``compose`` is the environment's model (loaded when not given) and
    ``built`` the services the release builds (default: from the build plan's
    sources). With ``secrets`` (declared secret name -> value) and ``key`` (the
    environment's digest key, :func:`~stagecraft.deploy.secret_digest.ensure_key`)
    the Swarm secrets get versioned names; without them (a plan) the digest is
    ``unresolved00``. Values only feed the digests: none is in the result but
    through :meth:`Stack.secret_values`. ``ipvs`` says whether the nodes'
    kernels have IPVS (Swarm's virtual IPs); without it services use
    ``endpoint_mode: dnsrr``. ``image_ids`` (image reference -> local image ID)
    names each image the local daemon has by its ID (:meth:`_Renderer.pinned`):
    no node tries a registry for it, and an image rebuilt under the same tag
    changes the service (a new tag alone, same content, keeps it). Every refusal is a
    RenderError naming the environment, the service and the fix.
    """
    if built is None:
        from stagecraft.deploy.build import built_services

        built = built_services(loaded)
    environment = loaded.environment(env)
    model = compose if compose is not None else environment_compose(loaded, env)
    renderer = _Renderer(
        loaded=loaded,
        env=env,
        release=release,
        environment=environment,
        compose=model,
        layout=Placement.of(environment),
        built=frozenset(built),
        stack=stack_name(release.project, env),
        values=secrets if key is not None else None,
        key=key if secrets is not None else None,
        ipvs=ipvs,
        image_ids=dict(image_ids or {}),
    )
    return renderer.render()


@dataclass(frozen=True)
class _Renderer:
    """What rendering an environment's stack needs."""

    loaded: LoadedConfig
    env: str
    release: Release
    environment: EnvironmentConfig
    compose: EnvironmentCompose
    layout: Placement
    built: frozenset[str]
    stack: str
    values: Mapping[str, str] | None
    key: bytes | None
    ipvs: bool
    image_ids: Mapping[str, str]

    @property
    def project(self) -> ComposeProject:
        return self.compose.project

    def render(self) -> Stack:
        """The whole stack: app services, the edge, and the top-level objects they use."""
        placed = sorted(self.layout.hosts_running)
        for name in placed:
            self.project.service(name)  # ComposeError naming the known services
        self.check_routes()
        services = {name: self.service(self.project.services[name]) for name in placed}
        definitions: dict[str, Any] = {n: dict(s.definition) for n, s in services.items()}
        secret_refs: dict[str, tuple[str, str]] = {}
        top_secrets: dict[str, Any] = {}
        for name, service in services.items():
            for var in service.secret_env:
                swarm = self.secret_name(name, var, service.secret_env[var])
                secret_refs[swarm] = (name, var)
                top_secrets[_secret_key(name, var)] = {"external": True, "name": swarm}
        used_volumes = {
            str(v["source"])
            for definition in definitions.values()
            for v in definition.get("volumes", [])
            if isinstance(v, Mapping) and v.get("type") == "volume" and v.get("source")
        }
        volumes = top_level(self.project, "volumes", used_volumes)
        used_networks = {n for d in definitions.values() for n in d.get("networks", {})}
        networks = top_level(self.project, "networks", used_networks - {"default"})
        top: dict[str, Any] = {"networks": networks, "volumes": volumes}
        for path, secret in self.compose.secrets_in(top) if self.compose.holds_secret(top) else ():
            raise RenderError(
                f"environment {self.env}: {'.'.join(str(p) for p in path)} uses secret {secret}; "
                "the stack file is stored in clear on the managers",
                hint=f"give that setting a clear value in environments.{self.env}.env",
            )
        networks["default"] = {
            "external": True,
            "name": network_name(self.release.project, self.env),
        }
        document: dict[str, Any] = {
            "version": STACK_VERSION,
            "services": definitions,
            "networks": networks,
        }
        files: dict[str, str] = {}
        if self.environment.routes:
            edge, config_name, content, edge_volumes = self.edge()
            clash = sorted(set(edge_volumes) & set(volumes))
            if clash:
                raise RenderError(
                    f"environment {self.env}: volume {', '.join(clash)} of the compose file "
                    "has the name of the edge proxy's volume",
                    hint=f"rename volume {clash[0]} in the compose file",
                )
            definitions[EDGE_SERVICE] = edge
            volumes.update(dict.fromkeys(edge_volumes))
            document["configs"] = {"edge_config": {"name": config_name, "file": _edge_file()}}
            files[EDGE_CONFIG_FILE] = content
        if volumes:
            document["volumes"] = volumes
        if top_secrets:
            document["secrets"] = top_secrets
        return Stack(
            name=self.stack,
            network=network_name(self.release.project, self.env),
            document=plain_data(document),
            services=services,
            secret_refs=dict(sorted(secret_refs.items())),
            files=files,
        )

    def check_routes(self) -> None:
        """A route must go to a service some role places (else the edge routes nowhere)."""
        for route_name, route in self.environment.routes.items():
            if route.service not in self.layout.hosts_running:
                raise RenderError(
                    f"environment {self.env}: route {route_name} goes to service "
                    f"{route.service}, which no host's roles place",
                    hint=f"add {route.service} to a role of environments.{self.env}.roles",
                )

    def service(self, service: ComposeService) -> StackService:
        """Render ``service`` as a stack service."""
        name = service.name
        routed = {route.service for route in self.environment.routes.values()}
        kind = service.kind(routed=name in routed)
        role, hosts = self.role_of(name)
        image = self.image(service)
        self.warn_dropped(service)
        body = {k: v for k, v in service.raw.items() if k in _KEPT and v is not None}
        self.refuse_secrets_outside_environment(name, body)
        clear, templates = split_environment(service, self.compose, self.environment)
        secret_names = tuple(
            sorted({p.name for t in templates.values() for p in t if isinstance(p, SecretRef)})
        )
        mounts = []
        for var in sorted(templates):
            file_var = f"{var}_FILE"
            if file_var in clear:
                raise RenderError(
                    f"environment {self.env}: service {name}: {var} holds a secret, which "
                    f"reaches the container as the file {file_var} names, but {file_var} "
                    "is already set",
                    hint=f"remove {file_var} from services.{name}.environment "
                    f"(and environments.{self.env}.env)",
                )
            clear[file_var] = f"{SECRETS_DIR}/{var}"
            mounts.append({"source": _secret_key(name, var), "target": var})
        set_or_drop(body, "environment", clear)
        set_or_drop(body, "secrets", mounts)
        volumes = [v for v in body.get("volumes", []) if not self.dev_bind(v)]
        set_or_drop(body, "volumes", volumes)
        named = sorted(
            str(v["source"])
            for v in volumes
            if isinstance(v, Mapping) and v.get("type") == "volume" and v.get("source")
        )
        stateful = bool(named) or kind == "accessory"
        if stateful and len(hosts) > 1:
            what = f"a named volume ({', '.join(named)})" if named else "kind accessory"
            holds = "a named volume" if named else "state (an accessory)"
            raise RenderError(
                f"environment {self.env}: service {name} has {what} but its role {role} has "
                f"{len(hosts)} hosts ({', '.join(hosts)}); a service with {holds} must "
                "run on exactly one host on Swarm: its data lives on that node",
                hint=f"put {name} in a role of its own with one host in "
                f"environments.{self.env}.roles (e.g. data: [{name}])",
            )
        body["networks"] = {**_networks(body.get("networks")), "default": None}
        healthcheck = self.healthcheck(service, kind)
        set_or_drop(body, "healthcheck", healthcheck)
        if kind == "web" and "stop_grace_period" not in body:
            drain = service.x_stagecraft.drain
            if drain is None:
                drain = self.environment.deploy.drain
            body["stop_grace_period"] = format_duration(drain + 10)
        if isinstance(body.get("extra_hosts"), list | Mapping):
            body["extra_hosts"] = _extra_hosts(body["extra_hosts"])
        deploy, replicas = self.deploy(
            service, kind=kind, role=role, hosts=hosts, stateful=stateful, named=named
        )
        body["deploy"] = deploy
        body["image"] = self.pinned(image)
        swarm_names = sorted(self.secret_name(name, var, t) for var, t in templates.items())
        digest = config_hash(
            {
                **body,
                "x-secret-env": {var: describe(t) for var, t in sorted(templates.items())},
                "x-secrets": swarm_names,
                "x-image": body["image"],  # config_hash leaves image: out
            }
        )
        labels = self.labels(name, kind, digest, image)
        body["labels"] = {
            **_user_labels(service.raw.get("labels")),
            **{k: labels[k] for k in _CONTAINER_LABELS},
        }
        deploy["labels"] = {**_user_labels(deploy.get("labels")), **labels}
        return StackService(
            name=name,
            kind=kind,
            image=image,
            replicas=replicas,
            config_hash=digest,
            secrets=secret_names,
            secret_env=dict(templates),
            definition=plain_data(body),
            role=role,
        )

    def role_of(self, name: str) -> tuple[str, tuple[str, ...]]:
        """The one role that places ``name``, and its hosts; RenderError for several."""
        roles = [role for role, names in self.environment.roles.items() if name in names]
        if len(roles) != 1:
            raise RenderError(
                f"environment {self.env}: service {name} is in roles {', '.join(roles)}; "
                "on Swarm a service runs on the nodes of exactly one role",
                hint=f"put {name} in one role of environments.{self.env}.roles "
                "(a role can have as many hosts as needed)",
            )
        role = roles[0]
        hosts = tuple(h for h, config in self.environment.hosts.items() if role in config.roles)
        return role, hosts

    def image(self, service: ComposeService) -> str:
        """The release tag of a built service, else its own ``image:``."""
        if service.name in self.built:
            return self.release.image_for(service.name)
        if not service.image:
            raise RenderError(
                f"environment {self.env}: service {service.name} has neither image: nor build: "
                f"({self.project.display_name})",
                hint=f"give service {service.name} an image: (or a build: section)",
            )
        return service.image

    def warn_dropped(self, service: ComposeService) -> None:
        """One warning naming the settings of ``service`` the stack leaves out unexpectedly."""
        dropped = sorted(
            k
            for k, v in service.raw.items()
            if k not in _KEPT and k not in _EXPECTED_DROPS and v not in (None, {}, [])
        )
        if not dropped:
            return
        which, them = (dropped[0], "it") if len(dropped) == 1 else (", ".join(dropped), "them")
        log.event(
            logger,
            logging.WARNING,
            f"service {service.name}: {which} not deployed to {self.env}: the Swarm stack "
            f"leaves {them} out (docker stack deploy does not support {them})",
            service=service.name,
            phase="render",
        )

    def refuse_secrets_outside_environment(self, name: str, body: Mapping[str, Any]) -> None:
        """A secret interpolated anywhere but ``environment`` would be written in clear."""
        refuse_secrets_outside_environment(
            self.compose,
            self.env,
            name,
            body,
            why="(on Swarm it becomes a secret file named by <VAR>_FILE; the stack file is in "
            "clear)",
        )

    def secret_name(self, service: str, var: str, template: Template) -> str:
        """The versioned Swarm secret name of ``var`` in ``service``."""
        digest = UNRESOLVED
        if self.key is not None and self.values is not None:
            _require_values(template, self.values, service, var, self.env)
            text = f"{service}\0{var}\0{resolve(template, self.values)}"
            digest = hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()[:12]
        return swarm_object_name(f"{self.stack}_{service}_{var}", digest)

    def dev_bind(self, volume: Any) -> bool:
        """Whether ``volume`` bind-mounts a path inside the project (a source dir)."""
        if not isinstance(volume, Mapping) or volume.get("type") != "bind":
            return False
        source = Path(str(volume.get("source", "")))
        root = self.loaded.root.resolve()
        return source == root or root in source.parents

    def healthcheck(self, service: ComposeService, kind: str) -> dict[str, Any] | None:
        """The compose healthcheck, else ``x-stagecraft.healthcheck`` run in the container.

        The translated check runs ``wget``, else ``curl``, inside the container:
        the image needs one of them (busybox and alpine images have ``wget``).
        """
        own = service.raw.get("healthcheck")
        disabled = (
            service.healthcheck is None
            or service.healthcheck.disable
            or (service.healthcheck.test[:1] == ("NONE",))
        )
        if own and not disabled:
            return dict(own)
        check = service.x_stagecraft.healthcheck
        if check is not None:
            port = check.port or self.routed_port(service.name)
            if port is None:
                raise RenderError(
                    f"environment {self.env}: service {service.name}: x-stagecraft.healthcheck "
                    "has no port and no route gives one",
                    hint=f"set x-stagecraft.healthcheck.port of service {service.name}",
                )
            path = check.path if check.path.startswith("/") else f"/{check.path}"
            url = shlex.quote(f"http://127.0.0.1:{port}{path}")
            return {
                "test": [
                    "CMD-SHELL",
                    f"wget -q -O /dev/null {url} || curl -fsS -o /dev/null {url}",
                ],
                "interval": format_duration(check.interval),
                "timeout": format_duration(check.timeout),
                "retries": 3,
                "start_period": format_duration(self.environment.deploy.health_timeout),
            }
        if kind == "web":
            raise RenderError(
                f"environment {self.env}: web service {service.name} has no healthcheck; "
                "Swarm switches traffic to a new task only once it is healthy",
                hint=f"add a healthcheck: or x-stagecraft.healthcheck (path, port) to service "
                f"{service.name} in the compose file",
            )
        return dict(own) if own else None

    def routed_port(self, name: str) -> int | None:
        """The container port of the first route (by name) to ``name``."""
        for _, route in sorted(self.environment.routes.items()):
            if route.service == name:
                return route.port
        return None

    def deploy(
        self,
        service: ComposeService,
        *,
        kind: str,
        role: str,
        hosts: tuple[str, ...],
        stateful: bool,
        named: list[str],
    ) -> tuple[dict[str, Any], int | None]:
        """``deploy:`` (without labels) and the replicas (None for a global service)."""
        user = dict(service.raw.get("deploy") or {})
        deploy = {k: v for k, v in user.items() if v is not None}
        replicas: int | None = None
        if deploy.get("mode") == "global":
            deploy.pop("replicas", None)
        else:
            scale = service.raw.get("scale")
            if isinstance(deploy.get("replicas"), int):
                replicas = int(deploy["replicas"])
            elif isinstance(scale, int) and not isinstance(scale, bool):
                replicas = scale
            else:
                replicas = 1 if stateful else len(hosts)
            if named and replicas > 1:
                raise RenderError(
                    f"environment {self.env}: service {service.name} has a named volume "
                    f"({', '.join(named)}) and {replicas} replicas; its tasks would share "
                    "one data directory",
                    hint=f"set deploy.replicas: 1 for service {service.name}",
                )
            deploy["replicas"] = replicas
        order = "stop-first" if kind == "accessory" or named else "start-first"
        update = {
            "parallelism": 1,
            "delay": "0s",
            "order": order,
            "failure_action": "rollback",
            "monitor": _MONITOR,
            **dict(deploy.get("update_config") or {}),
        }
        rollback = {
            "parallelism": 1,
            "order": order,
            "monitor": _MONITOR,
            **dict(deploy.get("rollback_config") or {}),
        }
        if order == "stop-first":  # never two tasks on one data directory, whatever was set
            update["order"] = rollback["order"] = order
        deploy["update_config"] = update
        deploy["rollback_config"] = rollback
        deploy.setdefault("restart_policy", {"condition": "any", "delay": "1s"})
        placement = dict(deploy.get("placement") or {})
        constraint = f"node.labels.{ROLE_LABEL}{role}==true"
        placement["constraints"] = [
            constraint,
            *(c for c in placement.get("constraints") or [] if c != constraint),
        ]
        deploy["placement"] = placement
        if not self.ipvs:
            deploy["endpoint_mode"] = "dnsrr"
        if isinstance(deploy.get("resources"), Mapping):
            deploy["resources"] = _resources(deploy["resources"])
        return deploy, replicas

    def edge(self) -> tuple[dict[str, Any], str, str, list[str]]:
        """The edge proxy service, its config's name and content, and its volumes."""
        from stagecraft.deploy.edge import edge_for
        from stagecraft.providers.proxy import Route

        routes = [
            Route(route.host, upstream_host(self.stack, route.service), route.port, route.path)
            for route in self.environment.routes.values()
        ]
        provider = edge_for(self.loaded, self.env).provider
        proxy = provider.swarm_service(routes, tls=self.environment.tls)
        config_name = swarm_object_name(
            f"{self.stack}_edge", hashlib.sha256(proxy.config.encode()).hexdigest()[:12]
        )
        deploy: dict[str, Any] = {
            "mode": "global",
            "placement": {"constraints": [f"node.labels.{EDGE_LABEL}==true"]},
            "update_config": {
                "parallelism": 1,
                "order": "stop-first",  # its ports are the node's: two tasks cannot bind them
                "failure_action": "rollback",
                "monitor": _MONITOR,
            },
        }
        if not self.ipvs:
            deploy["endpoint_mode"] = "dnsrr"
        body: dict[str, Any] = {
            "image": self.pinned(proxy.image),
            "command": list(proxy.command),
            "configs": [{"source": "edge_config", "target": proxy.config_target}],
            "ports": [
                {"target": port, "published": port, "protocol": "tcp", "mode": "host"}
                for port in proxy.ports
            ],
            "networks": {"default": None},
            "deploy": deploy,
        }
        if proxy.volumes:
            body["volumes"] = [f"{name}:{path}" for name, path in sorted(proxy.volumes.items())]
        digest = config_hash({**body, "x-config": config_name, "x-image": body["image"]})
        labels = self.labels(EDGE_SERVICE, "edge", digest, proxy.image)
        body["labels"] = {k: labels[k] for k in _CONTAINER_LABELS}
        deploy["labels"] = labels
        return body, config_name, proxy.config, sorted(proxy.volumes)

    def pinned(self, image: str) -> str:
        """The image ID of ``image`` when the local daemon has it, else ``image``.

        A node's Swarm agent tries to pull before every task start unless the
        image is named by ID (moby's container adapter); with no registry that
        attempt alone takes ~25 s on these hosts. The ID is also what makes a
        rebuild under the same tag change the service. The tag stays readable in
        the ``stagecraft.image`` service label.
        """
        return self.image_ids.get(image) or image

    def labels(self, name: str, kind: str, digest: str, image: str) -> dict[str, str]:
        """The ``stagecraft.*`` labels of ADR 0005 (as the SSH driver's), with the image tag."""
        return {
            "stagecraft.image": image,
            "stagecraft.config-hash": digest,
            "stagecraft.env": self.env,
            "stagecraft.kind": kind,
            "stagecraft.project": self.release.project,
            "stagecraft.release": self.release.id,
            "stagecraft.service": name,
            "stagecraft.version": self.release.version.value,
        }


def _require_values(
    template: Template, values: Mapping[str, str], service: str, var: str, env: str | None
) -> None:
    """RenderError naming the secrets of ``template`` that ``values`` lacks."""
    missing = sorted({p.name for p in template if isinstance(p, SecretRef)} - set(values))
    if missing:
        where = f"environment {env}: " if env else ""
        raise RenderError(
            f"{where}service {service}: {var}: no value for secret {', '.join(missing)}",
            hint=f"check `stagecraft secrets check --env {env or 'ENV'}`",
        )


def _secret_key(service: str, var: str) -> str:
    """The key of a secret in the stack file (top-level ``secrets:``)."""
    return f"{service}_{var}".lower()


def _edge_file() -> str:
    return f"./{EDGE_CONFIG_FILE}"


def _networks(value: Any) -> dict[str, Any]:
    """A service's ``networks`` as a mapping (Compose may give a list)."""
    if isinstance(value, Mapping):
        return dict(value)
    return dict.fromkeys(str(n) for n in value or [])


def _extra_hosts(value: Any) -> list[str]:
    """``extra_hosts`` as ``host:ip`` entries (the stack's format; Compose writes ``host=ip``)."""
    if isinstance(value, Mapping):
        pairs = [
            (str(host), str(ip))
            for host, ips in value.items()
            for ip in (ips if isinstance(ips, list) else [ips])
        ]
    else:
        pairs = []
        for entry in value:
            text = str(entry)
            sep = "=" if "=" in text else ":"
            host, _, ip = text.partition(sep)
            pairs.append((host, ip))
    return [f"{host}:{ip}" for host, ip in pairs]


def _resources(value: Mapping[str, Any]) -> dict[str, Any]:
    """``deploy.resources`` with ``cpus`` as a string (the 3.8 schema's type)."""
    found: dict[str, Any] = {}
    for section, limits in value.items():
        if isinstance(limits, Mapping) and isinstance(limits.get("cpus"), int | float):
            found[section] = {**limits, "cpus": f"{float(limits['cpus']):g}"}
        else:
            found[section] = limits
    return found


def _user_labels(value: Any) -> dict[str, str]:
    """A ``labels`` setting (mapping or ``k=v`` list) without ``stagecraft.*`` keys."""
    if isinstance(value, Mapping):
        items = [(str(k), str(v)) for k, v in value.items()]
    else:
        items = [(k, v) for k, _, v in (str(e).partition("=") for e in value or [])]
    return {k: v for k, v in items if not k.startswith(LABEL_PREFIX)}

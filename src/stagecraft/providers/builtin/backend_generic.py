"""The ``generic`` backend: any command as the dev server."""

from __future__ import annotations

from typing import ClassVar

from stagecraft.providers.backend import (
    BackendProvider,
    BuildPlan,
    BuildRequest,
    DevContext,
    DevProcess,
)
from stagecraft.providers.base import ProviderConfig
from stagecraft.providers.builtin._dev import (
    DevCommandConfig,
    DockerBuildConfig,
    build_plan,
    command_dev_process,
)


class GenericBackendConfig(ProviderConfig):
    """``backend.providers.generic``."""

    service: str
    dev: DevCommandConfig
    build: DockerBuildConfig | None = None


class GenericBackend(BackendProvider):
    """Any command as the backend dev server (node, uvicorn, go run, ...).

    Config keys (``backend.providers.generic``):

    - ``service`` (required): the compose service that runs the backend when deployed.
    - ``dev.command`` (required): a list of arguments, or one string split like a
      shell would (no shell runs it).
    - ``dev.workdir``: directory to run in, relative to the project root (default ``.``).
    - ``dev.port``: the port it listens on; also exported as ``PORT`` unless ``dev.env``
      sets ``PORT`` itself.
    - ``dev.env``: extra environment variables (they win over everything else).
      ``STAGECRAFT_PUBLIC_URL`` (the backend's URL through the dev proxy) is set
      when ``stagecraft dev`` knows it.
    - ``dev.ready``: ``{http: /healthz}`` or ``{log: "listening on"}``, optional ``timeout``
      (seconds, default 60).
    - ``dev.stop_signal`` (default ``SIGTERM``), ``dev.stop_timeout`` (default 10 s).
    - ``build``: ``{context, dockerfile, args, target}`` for a Dockerfile build;
      without it the image is built from the compose service's own ``build:``.

    Example ``stagecraft.yml``::

        backend:
          provider: generic
          providers:
            generic:
              service: api
              dev:
                command: [node, server.js]
                workdir: api
                port: 4000
                env: {LOG_LEVEL: debug}
                ready: {http: /healthz}

    >>> from pathlib import Path
    >>> backend = GenericBackend(GenericBackend.Config.model_validate({
    ...     "service": "api",
    ...     "dev": {"command": "node server.js", "workdir": "api", "port": 4000,
    ...             "ready": {"http": "/healthz"}},
    ... }))
    >>> proc = backend.dev_process(DevContext(project="shop", root=Path("/src/shop"),
    ...                                       domain="shop.localhost"))
    >>> proc.argv, proc.cwd, proc.env["PORT"], proc.readiness.http_path
    (('node', 'server.js'), PosixPath('/src/shop/api'), '4000', '/healthz')
    >>> backend.build(BuildRequest(root=Path("/src/shop"), image="shop-api:1"))
    ComposeBuild(service='api')
    """

    id: ClassVar[str] = "generic"
    Config: ClassVar[type[ProviderConfig]] = GenericBackendConfig
    config: GenericBackendConfig

    @property
    def service(self) -> str:
        return self.config.service

    def dev_process(self, ctx: DevContext) -> DevProcess:
        return command_dev_process("backend", self.config.dev, ctx)

    def build(self, req: BuildRequest) -> BuildPlan:
        return build_plan(self.config.build, self.service, req)

"""The ``generic`` frontend: any command as the frontend dev server."""

from __future__ import annotations

from typing import ClassVar

from stagecraft.providers.base import ProviderConfig
from stagecraft.providers.builtin._dev import (
    DevCommandConfig,
    DockerBuildConfig,
    build_plan,
    command_dev_process,
)
from stagecraft.providers.frontend import (
    BuildPlan,
    BuildRequest,
    DevContext,
    DevProcess,
    FrontendProvider,
)


class GenericFrontendConfig(ProviderConfig):
    """``frontend.providers.generic``."""

    service: str
    dev: DevCommandConfig
    build: DockerBuildConfig | None = None


class GenericFrontend(FrontendProvider):
    """Any command as the frontend dev server (Next.js, Angular, a static server, ...).

    Config keys (``frontend.providers.generic``) are those of the generic backend:
    ``service``, ``dev: {command, workdir, port, env, ready, stop_signal,
    stop_timeout}`` and the optional ``build: {context, dockerfile, args, target}``.
    ``PORT`` is exported when ``dev.port`` is set, and ``STAGECRAFT_PUBLIC_URL``
    (the frontend's URL through the dev proxy) and ``STAGECRAFT_API_URL`` (the
    backend's) when ``stagecraft dev`` knows them; ``dev.env`` wins over all of
    these, so ``env: {NEXT_PUBLIC_API: ...}`` can repeat a value under your own name.

    Example ``stagecraft.yml``::

        frontend:
          provider: generic
          providers:
            generic:
              service: web
              dev:
                command: npx --no -- next dev -H 127.0.0.1 -p 3000
                workdir: web
                port: 3000
                ready: {log: "Ready in"}
                stop_signal: SIGINT

    >>> from pathlib import Path
    >>> web = GenericFrontend(GenericFrontend.Config.model_validate({
    ...     "service": "web",
    ...     "dev": {"command": "npx --no -- next dev -p 3000", "port": 3000,
    ...             "ready": {"log": "Ready in"}},
    ... }))
    >>> proc = web.dev_process(DevContext(project="shop", root=Path("/src/shop"),
    ...                                   domain="shop.localhost",
    ...                                   api_url="https://api.shop.localhost"))
    >>> proc.argv, proc.env["STAGECRAFT_API_URL"], proc.readiness.log_pattern
    (('npx', '--no', '--', 'next', 'dev', '-p', '3000'), 'https://api.shop.localhost', 'Ready in')
    """

    id: ClassVar[str] = "generic"
    Config: ClassVar[type[ProviderConfig]] = GenericFrontendConfig
    config: GenericFrontendConfig

    @property
    def service(self) -> str:
        return self.config.service

    def dev_process(self, ctx: DevContext) -> DevProcess:
        return command_dev_process("frontend", self.config.dev, ctx, api_url=True)

    def build(self, req: BuildRequest) -> BuildPlan:
        return build_plan(self.config.build, self.service, req)

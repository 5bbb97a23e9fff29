"""The ``generic`` frontend: any command as the frontend dev server."""

from __future__ import annotations

from typing import ClassVar

from stagecraft.providers.base import ProviderConfig
from stagecraft.providers.builtin._dev import (
    DevCommandConfig,
    DockerBuildConfig,
    build_plan,
    dev_env,
)
from stagecraft.providers.frontend import (
    BuildPlan,
    BuildRequest,
    DevContext,
    DevProcess,
    FrontendProvider,
    Readiness,
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
        dev = self.config.dev
        computed: dict[str, str] = {}
        if dev.port:
            computed["PORT"] = str(dev.port)
        if ctx.public_url:
            computed["STAGECRAFT_PUBLIC_URL"] = ctx.public_url
        if ctx.api_url:
            computed["STAGECRAFT_API_URL"] = ctx.api_url
        return DevProcess(
            name="frontend",
            argv=dev.command,
            cwd=ctx.root / dev.workdir,
            env=dev_env(ctx, computed, dev.env),
            port=dev.port,
            readiness=dev.ready.readiness() if dev.ready else Readiness(),
            stop_signal=dev.stop_signal,
            stop_timeout=dev.stop_timeout,
        )

    def build(self, req: BuildRequest) -> BuildPlan:
        return build_plan(self.config.build, self.service, req)

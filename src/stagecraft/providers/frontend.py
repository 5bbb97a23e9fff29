"""Frontend providers: the ``frontend`` provider kind.

A frontend provider runs the web UI's dev server (Vite, Next.js, any command)
for ``stagecraft dev`` and says how its production image is built. It uses
the same contract as backends (:mod:`stagecraft.providers.backend`):
:meth:`FrontendProvider.dev_process` returns a :class:`DevProcess`,
:meth:`FrontendProvider.build` a :class:`BuildPlan`, both pure values.

The dev proxy serves the frontend on a public HTTPS hostname
(``https://app.shop.localhost``) and forwards WebSocket upgrades, so a dev
server's hot-reload socket works through it; ``DevContext.public_url`` tells
the provider that hostname so it can configure the server for it (see the
``vite`` provider).

A third-party frontend is a subclass registered under the entry-point group
``stagecraft.providers.frontend``::

    class NextFrontend(FrontendProvider):
        \"\"\"Next.js with next dev.\"\"\"

        id = "next"

        class Config(ProviderConfig):
            service: str
            workdir: str = "."
            port: int = 3000

        @property
        def service(self) -> str:
            return self.config.service

        def dev_process(self, ctx: DevContext) -> DevProcess:
            port = self.config.port
            return DevProcess(
                name="frontend",
                argv=("npx", "--no", "--", "next", "dev", "-H", "127.0.0.1", "-p", str(port)),
                cwd=ctx.root / self.config.workdir,
                env=dict(ctx.env),
                port=port,
                readiness=Readiness(log_pattern=r"Ready in"),
            )

        def build(self, req: BuildRequest) -> BuildPlan:
            return ComposeBuild(service=self.service)

    # pyproject.toml:
    # [project.entry-points."stagecraft.providers.frontend"]
    # next = "stagecraft_next:NextFrontend"
"""

from __future__ import annotations

from typing import ClassVar

from stagecraft.providers.backend import (
    BuildCommand,
    BuildPlan,
    BuildRequest,
    ComposeBuild,
    DevContext,
    DevProcess,
    DevServerProvider,
    DockerBuild,
    Readiness,
)

__all__ = [
    "BuildCommand",
    "BuildPlan",
    "BuildRequest",
    "ComposeBuild",
    "DevContext",
    "DevProcess",
    "DockerBuild",
    "FrontendProvider",
    "Readiness",
]


class FrontendProvider(DevServerProvider):
    """Base class of frontend providers (provider kind ``frontend``)."""

    kind: ClassVar[str] = "frontend"

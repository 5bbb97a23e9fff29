"""The ``vite`` frontend: the project's own Vite dev server, behind the HTTPS dev proxy."""

from __future__ import annotations

from typing import ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from stagecraft.providers.base import ProviderConfig
from stagecraft.providers.builtin._dev import (
    ENV_NAME,
    DockerBuildConfig,
    EnvVars,
    Port,
    ReadyConfig,
    RelPath,
    StopConfig,
    build_plan,
    check_env_names,
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

READY_LINE = "ready in"
"""Vite's startup banner: ``VITE v7.1.2  ready in 312 ms``."""

_EXEC = {
    # `--` stops npx from reading Vite's flags as npm options (npm 11 does).
    "npm": ("npx", "--no", "--", "vite"),
    "pnpm": ("pnpm", "exec", "vite"),
    "yarn": ("yarn", "vite"),
}


class ViteConfig(StopConfig):
    """``frontend.providers.vite``."""

    service: str
    workdir: RelPath = "."
    port: Port = 5173
    host: str = "127.0.0.1"
    package_manager: Literal["npm", "pnpm", "yarn"] = "npm"
    script: str | None = None
    api_url_env: str | None = "VITE_API_URL"
    env: EnvVars = Field(default_factory=dict)
    ready: ReadyConfig | None = None
    build: DockerBuildConfig | None = None

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        return check_env_names(value)

    @field_validator("api_url_env")
    @classmethod
    def _api_env_name(cls, value: str | None) -> str | None:
        if value is not None and not ENV_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not an environment variable name")
        return value


class ViteFrontend(FrontendProvider):
    """A Vite app: runs the project's own ``vite`` with hot reload through the dev proxy.

    Config keys (``frontend.providers.vite``):

    - ``service`` (required): the compose service that serves the built frontend.
    - ``workdir``: the directory with ``package.json``, relative to the project
      root (default ``.``).
    - ``port`` (default 5173) and ``host`` (default ``127.0.0.1``): where Vite
      listens; ``--strictPort`` makes a busy port an error instead of a silent move.
    - ``package_manager``: ``npm`` (default), ``pnpm`` or ``yarn``; how the local
      ``vite`` binary is run: ``npx --no -- vite`` (``--no``: never download a
      Vite that is not installed in the project), ``pnpm exec vite``, ``yarn vite``.
    - ``script``: run ``<package manager> run <script>`` instead (the script must
      start Vite; the port and host flags are passed on to it).
    - ``api_url_env``: the variable that receives the backend's public URL
      (default ``VITE_API_URL``, visible to app code as ``import.meta.env.VITE_API_URL``;
      null to turn it off).
    - ``env``: extra environment variables (they win over everything else).
    - ``ready``: readiness probe; by default Vite's ``ready in`` banner.
    - ``stop_signal`` (default ``SIGTERM``), ``stop_timeout`` (default 10 s).
    - ``build``: ``{context, dockerfile, args, target}``; default: the compose
      service's own ``build:``.

    **HMR behind the HTTPS proxy.** The page is served from
    ``https://app.<domain>`` (port 443) while Vite listens on
    ``127.0.0.1:5173``. Vite's HMR client connects its WebSocket to the page's
    own host and port unless ``server.hmr.clientPort``/``host``/``protocol`` say
    otherwise, and the dev proxy (Caddy) passes WebSocket upgrades through, so
    HMR works with no change to ``vite.config``. Vite reads those settings only
    from its config file, not from the environment, and passing ``--config`` would
    replace the user's own file, so Stagecraft does not touch the config. Two
    environment variables cover the rest:

    - ``__VITE_ADDITIONAL_SERVER_ALLOWED_HOSTS`` (read by Vite itself since the
      ``server.allowedHosts`` check of Vite 5.4.12/6.0.9): the public hostname, so
      Vite answers requests for domains other than ``*.localhost`` (without it,
      Vite 7 answers 403 through the proxy; checked with Vite 7.3 behind Caddy
      2.11, where the page and the HMR WebSocket upgrade both pass).
    - ``STAGECRAFT_HMR_HOST``, ``STAGECRAFT_HMR_PROTOCOL`` (``wss``/``ws``),
      ``STAGECRAFT_HMR_CLIENT_PORT`` and ``STAGECRAFT_PUBLIC_URL``: for a
      ``vite.config`` that pins ``server.hmr`` (or sets ``server.hmr.port`` to a
      separate HMR port), so it can follow the proxy::

          server: {
            hmr: process.env.STAGECRAFT_HMR_HOST && {
              host: process.env.STAGECRAFT_HMR_HOST,
              protocol: process.env.STAGECRAFT_HMR_PROTOCOL,
              clientPort: Number(process.env.STAGECRAFT_HMR_CLIENT_PORT),
            },
          },

    Example ``stagecraft.yml``::

        frontend:
          provider: vite
          providers:
            vite: {service: web, workdir: web, port: 5173}

    >>> from pathlib import Path
    >>> web = ViteFrontend(ViteFrontend.Config.model_validate(
    ...     {"service": "web", "workdir": "web", "port": 5173}))
    >>> proc = web.dev_process(DevContext(project="shop", root=Path("/src/shop"),
    ...                                   domain="shop.localhost",
    ...                                   public_url="https://app.shop.localhost"))
    >>> proc.argv
    ('npx', '--no', '--', 'vite', '--port', '5173', '--strictPort', '--host', '127.0.0.1')
    >>> proc.env["STAGECRAFT_HMR_HOST"], proc.env["STAGECRAFT_HMR_CLIENT_PORT"]
    ('app.shop.localhost', '443')
    """

    id: ClassVar[str] = "vite"
    Config: ClassVar[type[ProviderConfig]] = ViteConfig
    config: ViteConfig

    @property
    def service(self) -> str:
        return self.config.service

    def argv(self) -> tuple[str, ...]:
        """The dev server command line."""
        cfg = self.config
        flags = ("--port", str(cfg.port), "--strictPort", "--host", cfg.host)
        if cfg.script is None:
            return (*_EXEC[cfg.package_manager], *flags)
        if cfg.package_manager == "npm":
            return ("npm", "run", cfg.script, "--", *flags)
        return (cfg.package_manager, "run", cfg.script, *flags)

    def dev_process(self, ctx: DevContext) -> DevProcess:
        cfg = self.config
        computed: dict[str, str] = {}
        if ctx.public_url:
            computed.update(hmr_env(ctx.public_url))
        if ctx.api_url and cfg.api_url_env:
            computed[cfg.api_url_env] = ctx.api_url
        return DevProcess(
            name="frontend",
            argv=self.argv(),
            cwd=ctx.root / cfg.workdir,
            env=dev_env(ctx, computed, cfg.env),
            port=cfg.port,
            readiness=cfg.ready.readiness() if cfg.ready else Readiness(log_pattern=READY_LINE),
            stop_signal=cfg.stop_signal,
            stop_timeout=cfg.stop_timeout,
        )

    def build(self, req: BuildRequest) -> BuildPlan:
        return build_plan(self.config.build, self.service, req)


def hmr_env(public_url: str) -> dict[str, str]:
    """The variables that let Vite (and its HMR socket) work behind ``public_url``.

    >>> hmr_env("https://app.shop.test")["__VITE_ADDITIONAL_SERVER_ALLOWED_HOSTS"]
    'app.shop.test'
    """
    parts = urlsplit(public_url)
    host = parts.hostname or ""
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    return {
        "__VITE_ADDITIONAL_SERVER_ALLOWED_HOSTS": host,
        "STAGECRAFT_PUBLIC_URL": public_url,
        "STAGECRAFT_HMR_HOST": host,
        "STAGECRAFT_HMR_PROTOCOL": "wss" if secure else "ws",
        "STAGECRAFT_HMR_CLIENT_PORT": str(port),
    }

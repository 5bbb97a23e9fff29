"""The ``encore-ts`` backend: ``encore run`` in dev, ``encore build docker`` for the image."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator

from stagecraft.providers.backend import (
    BackendProvider,
    BuildCommand,
    BuildPlan,
    BuildRequest,
    DevContext,
    DevProcess,
    Readiness,
)
from stagecraft.providers.base import ProviderConfig
from stagecraft.providers.builtin._dev import (
    EnvVars,
    Port,
    ReadyConfig,
    RelPath,
    StopConfig,
    check_env_names,
    dev_env,
)
from stagecraft.providers.builtin.secrets_dotenv import read_dotenv
from stagecraft.providers.secrets import SECRET_NAME, SecretsError, SecretValue

READY_LINE = "Encore development server running"
"""What ``encore run`` prints on stderr once the app serves requests."""

SecretType = Literal["local", "dev", "development", "pr", "preview", "prod", "production"]


class EncoreDevConfig(StopConfig):
    """``dev`` block of ``backend.providers.encore-ts``."""

    host: str = "127.0.0.1"
    port: Port = 4000
    watch: bool = True
    browser: Literal["auto", "never", "always"] | None = "never"
    env: EnvVars = Field(default_factory=dict)
    env_file: RelPath | None = None
    ready: ReadyConfig | None = None
    stop_signal: str = "SIGINT"

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        return check_env_names(value)


def _local_only() -> list[SecretType]:
    return ["local"]


class EncoreSecretsConfig(ProviderConfig):
    """``secrets`` block: which secrets to copy into Encore's local secret store."""

    names: list[Annotated[str, Field(pattern=SECRET_NAME.pattern)]] = Field(default_factory=list)
    types: list[SecretType] = Field(default_factory=_local_only, min_length=1)


class EncoreBuildConfig(ProviderConfig):
    """``build`` block: options of ``encore build docker``."""

    base: str | None = None
    config: RelPath | None = None
    services: list[str] = Field(default_factory=list)
    gateways: list[str] = Field(default_factory=list)


class EncoreTsConfig(ProviderConfig):
    """``backend.providers.encore-ts``."""

    service: str
    app_dir: RelPath = "."
    dev: EncoreDevConfig = Field(default_factory=EncoreDevConfig)
    secrets: EncoreSecretsConfig = Field(default_factory=EncoreSecretsConfig)
    build: EncoreBuildConfig = Field(default_factory=EncoreBuildConfig)


@dataclass(frozen=True)
class SecretCommand:
    """A local command whose input is a secret: ``stdin`` goes to its standard input."""

    argv: tuple[str, ...]
    cwd: Path
    stdin: SecretValue


class EncoreTsBackend(BackendProvider):
    """An Encore.ts backend: ``encore run`` in dev, ``encore build docker`` for the image.

    Config keys (``backend.providers.encore-ts``):

    - ``service`` (required): the compose service that runs the built image.
    - ``app_dir``: the directory holding ``encore.app``, relative to the project
      root (default ``.``).
    - ``dev.host`` / ``dev.port``: the listen address (default ``127.0.0.1:4000``),
      passed as ``--listen host:port``.
    - ``dev.watch``: live reload (default true; ``--watch=false`` turns it off).
    - ``dev.browser``: ``--browser`` (default ``never``: ``stagecraft dev`` prints the
      URLs); null leaves the flag out, for Encore CLIs that predate it.
    - ``dev.env``: extra environment variables; ``dev.env_file``: a dotenv file,
      relative to the project root, loaded under ``dev.env`` (an error if it is
      missing).
    - ``dev.ready``: readiness probe; by default the log line
      ``Encore development server running``.
    - ``dev.stop_signal`` (default ``SIGINT``, what Encore handles for a clean
      shutdown), ``dev.stop_timeout`` (default 10 s).
    - ``secrets.names`` / ``secrets.types``: secrets to copy into Encore's secret
      store with ``encore secret set --type <types> <NAME>`` before ``encore run``
      (default type ``local``; values go on stdin, never on the command line).
    - ``build.base`` / ``build.config`` / ``build.services`` / ``build.gateways``:
      ``encore build docker`` options (``--base``, ``--config``, ``--services``,
      ``--gateways``).

    The dev server always gets ``DISABLE_ENCORE_TELEMETRY=1`` and, when the dev
    proxy uses a local CA, ``NODE_EXTRA_CA_CERTS`` pointing at its certificate,
    so calls the app makes to other ``https://*.localhost`` services verify.

    Encore CLI references: ``encore run [--watch] [--listen addr] [--browser]``
    (https://encore.dev/docs/ts/cli/cli-reference), ``encore build docker IMAGE:TAG
    [--base] [--config] [--services] [--gateways]``
    (https://encore.dev/docs/ts/self-host/build), ``encore secret set --type
    <local|dev|pr|prod> NAME`` reading the value from stdin
    (https://encore.dev/docs/ts/primitives/secrets), ``DISABLE_ENCORE_TELEMETRY=1``
    (https://encore.dev/docs/telemetry; read in ``cli/cmd/encore/telemetry.go``).

    Example ``stagecraft.yml``::

        backend:
          provider: encore-ts
          providers:
            encore-ts:
              service: api
              app_dir: backend
              dev: {port: 4000, env_file: .env.local}
              secrets: {names: [STRIPE_KEY]}

    >>> from pathlib import Path
    >>> api = EncoreTsBackend(EncoreTsBackend.Config.model_validate(
    ...     {"service": "api", "app_dir": "backend"}))
    >>> proc = api.dev_process(DevContext(project="shop", root=Path("/src/shop"),
    ...                                   domain="shop.localhost"))
    >>> proc.argv
    ('encore', 'run', '--listen', '127.0.0.1:4000', '--watch=true', '--browser=never')
    >>> api.build(BuildRequest(root=Path("/src/shop"), image="ghcr.io/acme/shop-api:1f2e3d")).argv
    ('encore', 'build', 'docker', 'ghcr.io/acme/shop-api:1f2e3d')
    """

    id: ClassVar[str] = "encore-ts"
    Config: ClassVar[type[ProviderConfig]] = EncoreTsConfig
    config: EncoreTsConfig

    @property
    def service(self) -> str:
        return self.config.service

    def app_root(self, root: Path) -> Path:
        """The directory holding ``encore.app`` for a project rooted at ``root``."""
        return root / self.config.app_dir

    def dev_process(self, ctx: DevContext) -> DevProcess:
        dev = self.config.dev
        cwd = self.app_root(ctx.root)
        argv = ["encore", "run", "--listen", f"{dev.host}:{dev.port}"]
        argv.append(f"--watch={'true' if dev.watch else 'false'}")
        if dev.browser is not None:
            argv.append(f"--browser={dev.browser}")
        computed = {"DISABLE_ENCORE_TELEMETRY": "1"}
        if ctx.ca_cert is not None:
            computed["NODE_EXTRA_CA_CERTS"] = str(ctx.ca_cert)
        if ctx.public_url:
            computed["STAGECRAFT_PUBLIC_URL"] = ctx.public_url
        from_file = read_dotenv(ctx.root / dev.env_file) if dev.env_file else {}
        return DevProcess(
            name="backend",
            argv=tuple(argv),
            cwd=cwd,
            env=dev_env(ctx, computed, {**from_file, **dev.env}),
            port=dev.port,
            readiness=dev.ready.readiness() if dev.ready else Readiness(log_pattern=READY_LINE),
            stop_signal=dev.stop_signal,
            stop_timeout=dev.stop_timeout,
        )

    def build(self, req: BuildRequest) -> BuildPlan:
        opts = self.config.build
        argv = ["encore", "build", "docker"]
        if opts.base:
            argv.append(f"--base={opts.base}")
        if opts.config:
            argv.append(f"--config={opts.config}")
        if opts.services:
            argv.append(f"--services={','.join(opts.services)}")
        if opts.gateways:
            argv.append(f"--gateways={','.join(opts.gateways)}")
        argv.append(req.image)
        return BuildCommand(
            argv=tuple(argv),
            cwd=self.app_root(req.root),
            image=req.image,
            env={"DISABLE_ENCORE_TELEMETRY": "1"},
        )

    def secret_commands(self, values: Mapping[str, SecretValue], root: Path) -> list[SecretCommand]:
        """``encore secret set`` runs that copy ``secrets.names`` into Encore's store.

        ``values`` holds the resolved secrets (from the environment's secrets
        provider); a configured name without a value is an error naming it.
        """
        names = self.config.secrets.names
        missing = [name for name in names if name not in values]
        if missing:
            raise SecretsError(
                f"encore-ts: no value for secret{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)} listed in secrets.names",
                hint="provide them through the secrets provider, or remove them from "
                "backend.providers.encore-ts.secrets.names",
                missing=missing,
            )
        types = ",".join(dict.fromkeys(self.config.secrets.types))
        cwd = self.app_root(root)
        return [
            SecretCommand(("encore", "secret", "set", "--type", types, name), cwd, values[name])
            for name in names
        ]

"""Fake providers with the shapes of the built-ins, so config tests do not depend on them.

The golden cases test how the core maps a provider's validation errors to
lines; the providers' own rules are tested with the providers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import EntryPoint
from typing import Any, Literal

from pydantic import Field

from stagecraft.providers import base
from stagecraft.providers.base import Provider, ProviderConfig, Registry


class Ready(ProviderConfig):
    http: str | None = None
    log: str | None = None


class DevCommand(ProviderConfig):
    command: list[str]
    workdir: str = "."
    port: int = Field(default=4000, ge=1, le=65535)
    env: dict[str, str] = Field(default_factory=dict)
    ready: Ready | None = None


class GenericBackendConfig(ProviderConfig):
    service: str | None = None
    dev: DevCommand | None = None


class GenericBackend(Provider):
    """Fake generic backend."""

    id = "generic"
    kind = "backend"
    Config = GenericBackendConfig


class EncoreBackend(Provider):
    """Fake encore-ts backend."""

    id = "encore-ts"
    kind = "backend"
    Config = GenericBackendConfig


class ViteConfig(ProviderConfig):
    service: str | None = None
    workdir: str = "."
    port: int = Field(default=5173, ge=1, le=65535)


class GenericFrontend(Provider):
    """Fake generic frontend."""

    id = "generic"
    kind = "frontend"
    Config = GenericBackendConfig


class ViteFrontend(Provider):
    """Fake vite frontend."""

    id = "vite"
    kind = "frontend"
    Config = ViteConfig


class RawMigrations(Provider):
    """Fake raw migration engine."""

    id = "raw"
    kind = "migration"


class Caddy(Provider):
    """Fake caddy proxy."""

    id = "caddy"
    kind = "proxy"


class TailscaleConfig(ProviderConfig):
    auth_key_env: str = "TS_AUTHKEY"
    tailnet: str | None = None


class Tailscale(Provider):
    """Fake tailscale network."""

    id = "tailscale"
    kind = "network"
    Config = TailscaleConfig


class DigitalOceanConfig(ProviderConfig):
    token_env: str = "DIGITALOCEAN_TOKEN"
    region: str = "fra1"


class DigitalOcean(Provider):
    """Fake digitalocean cloud."""

    id = "digitalocean"
    kind = "cloud"
    Config = DigitalOceanConfig


class GitHub(Provider):
    """Fake github CI."""

    id = "github"
    kind = "ci"


class EnvSecrets(Provider):
    """Fake env secrets."""

    id = "env"
    kind = "secrets"


class DotenvConfig(ProviderConfig):
    path: str = ".env"


class DotenvSecrets(Provider):
    """Fake dotenv secrets."""

    id = "dotenv"
    kind = "secrets"
    Config = DotenvConfig


class CommandConfig(ProviderConfig):
    command: list[str]
    format: Literal["dotenv", "json"] = "dotenv"


class CommandSecrets(Provider):
    """Fake command secrets."""

    id = "command"
    kind = "secrets"
    Config = CommandConfig


FAKES: list[type[Provider]] = [
    GenericBackend,
    EncoreBackend,
    GenericFrontend,
    ViteFrontend,
    RawMigrations,
    Caddy,
    Tailscale,
    DigitalOcean,
    GitHub,
    EnvSecrets,
    DotenvSecrets,
    CommandSecrets,
]


def fake_registries() -> dict[str, Registry[Any]]:
    """One registry per kind holding the fakes above."""
    registries: dict[str, Registry[Any]] = {}
    for kind in base.KINDS:
        eps = [
            EntryPoint(cls.id, f"{__name__}:{cls.__name__}", base.GROUP_PREFIX + kind)
            for cls in FAKES
            if cls.kind == kind
        ]
        registries[kind] = Registry(kind, eps=eps)
    return registries


@contextmanager
def fake_providers() -> Iterator[None]:
    """Replace the process-wide registries with the fakes while the block runs."""
    saved = dict(base._REGISTRIES)
    base._REGISTRIES.clear()
    base._REGISTRIES.update(fake_registries())
    try:
        yield
    finally:
        base._REGISTRIES.clear()
        base._REGISTRIES.update(saved)

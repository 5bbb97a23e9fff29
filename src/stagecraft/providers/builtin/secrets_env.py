"""The ``env`` secrets provider: secrets from the process environment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar

from pydantic import Field

from stagecraft.providers.base import ProviderConfig
from stagecraft.providers.secrets import SecretsContext, SecretsProvider


class EnvSecretsConfig(ProviderConfig):
    """``secrets_provider: {provider: env, prefix: ...}``."""

    prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]*$")] = ""


class EnvSecrets(SecretsProvider):
    """Secrets from the environment of the ``stagecraft`` process (CI secrets, direnv, ...).

    Config keys:

    - ``prefix``: read ``<prefix><NAME>`` instead of ``NAME`` (default: no prefix),
      e.g. ``prefix: STAGING_`` reads ``STAGING_POSTGRES_PASSWORD``.

    A variable that is set to the empty string counts as set.

    Example ``stagecraft.yml``::

        environments:
          production:
            secrets: [POSTGRES_PASSWORD]
            secrets_provider: {provider: env, prefix: PROD_}

    >>> from pathlib import Path
    >>> provider = EnvSecrets(EnvSecrets.Config.model_validate({"prefix": "PROD_"}))
    >>> ctx = SecretsContext(root=Path("."), environ={"PROD_POSTGRES_PASSWORD": "s3cret"})
    >>> provider.resolve(["POSTGRES_PASSWORD"], ctx)["POSTGRES_PASSWORD"].reveal()
    's3cret'
    """

    id: ClassVar[str] = "env"
    Config: ClassVar[type[ProviderConfig]] = EnvSecretsConfig
    config: EnvSecretsConfig

    def fetch(self, names: list[str], ctx: SecretsContext) -> Mapping[str, str]:
        prefix = self.config.prefix
        return {name: ctx.environ[prefix + name] for name in names if prefix + name in ctx.environ}

    def missing_hint(self, missing: list[str], ctx: SecretsContext) -> str:
        shown = ", ".join(self.config.prefix + name for name in missing)
        return f"set these environment variables before running stagecraft: {shown}"

"""Secrets providers: the ``secrets`` provider kind.

A secrets provider turns secret *names* (``POSTGRES_PASSWORD``, ``STRIPE_KEY``,
declared under ``environments.<env>.secrets``) into values, from wherever the
team keeps them: the process environment (``env``), a dotenv file that is not
committed (``dotenv``), or a password manager's command line (``command``).

Values come back wrapped in :class:`SecretValue`, whose ``repr``, ``str`` and
f-string formatting never show the value: a secret that ends up in a log line,
an exception message or a printed plan shows as ``***``. Only
:meth:`SecretValue.reveal` returns the value, at the one place that writes it
where it belongs (a 0600 env file on a host, a child process's stdin).

:meth:`SecretsProvider.resolve` is the one entry point. It asks the provider's
:meth:`~SecretsProvider.fetch` for the names, and raises :class:`SecretsError`
naming *every* missing name at once (names only), with the provider's hint.

A third-party provider implements ``fetch`` (and optionally ``missing_hint``)::

    class VaultSecrets(SecretsProvider):
        \"\"\"Secrets from HashiCorp Vault's KV store.\"\"\"

        id = "vault"

        class Config(ProviderConfig):
            mount: str = "secret"
            path: str

        def fetch(self, names, ctx):
            data = read_kv(self.config.mount, self.config.path)   # your client
            return {name: data[name] for name in names if name in data}

registered in its ``pyproject.toml``::

    [project.entry-points."stagecraft.providers.secrets"]
    vault = "stagecraft_vault:VaultSecrets"

Using a provider (this is what ``stagecraft secrets check`` does)::

    from stagecraft.providers import registry
    from stagecraft.providers.secrets import SecretsContext

    provider = registry("secrets").create("dotenv", {"path": ".env.staging"})
    values = provider.resolve(["POSTGRES_PASSWORD"], SecretsContext(root=Path(".")))
    print(values)        # {'POSTGRES_PASSWORD': SecretValue('POSTGRES_PASSWORD', '***')}
    password = values["POSTGRES_PASSWORD"].reveal()
"""

from __future__ import annotations

import hmac
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from stagecraft import redact
from stagecraft.errors import ExitCode, StagecraftError
from stagecraft.providers.base import Provider

SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MASK = "***"


class SecretValue:
    """A secret that never shows itself: ``str``/``repr``/f-strings give ``***``.

    >>> key = SecretValue("sk_live_123", name="STRIPE_KEY")
    >>> key, str(key), f"{key}"
    (SecretValue('STRIPE_KEY', '***'), '***', '***')
    >>> key.reveal()
    'sk_live_123'
    """

    __slots__ = ("_value", "name")

    def __init__(self, value: str, *, name: str | None = None) -> None:
        if not isinstance(value, str):
            raise TypeError("a SecretValue holds a str")
        self._value = value
        self.name = name

    def reveal(self) -> str:
        """The secret itself. Call it only where the value is written to its destination."""
        return self._value

    def __repr__(self) -> str:
        return f"SecretValue({self.name!r}, {MASK!r})" if self.name else f"SecretValue({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretValue):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((SecretValue, self._value))

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would copy the value into places (caches, queues) nobody audits.
        raise TypeError("SecretValue cannot be pickled")


@dataclass(frozen=True)
class SecretsContext:
    """Where a provider resolves secrets: the project root and the process environment."""

    root: Path
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)


class SecretsError(StagecraftError):
    """Secrets could not be resolved; ``missing`` lists the names (never values)."""

    exit_code = ExitCode.USAGE

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        missing: Iterable[str] = (),
    ) -> None:
        super().__init__(message, hint=hint)
        self.missing: tuple[str, ...] = tuple(missing)


class SecretsProvider(Provider, ABC):
    """Base class of secrets providers (provider kind ``secrets``)."""

    kind: ClassVar[str] = "secrets"

    def resolve(self, names: Iterable[str], ctx: SecretsContext) -> dict[str, SecretValue]:
        """Every name's value; raises :class:`SecretsError` listing all missing names."""
        wanted = _unique(names)
        bad = [n for n in wanted if not SECRET_NAME.fullmatch(n)]
        if bad:
            raise SecretsError(
                f"invalid secret name{'s' if len(bad) > 1 else ''}: {', '.join(map(repr, bad))}",
                hint="secret names are environment-variable names: letters, digits and "
                "underscores, not starting with a digit",
            )
        found = self.fetch(wanted, ctx) if wanted else {}
        missing = [n for n in wanted if n not in found]
        if missing:
            raise SecretsError(
                f"{len(missing)} secret{'s' if len(missing) > 1 else ''} not found by the "
                f"{self.id} secrets provider: {', '.join(missing)}",
                hint=self.missing_hint(missing, ctx),
                missing=missing,
            )
        for n in wanted:  # from now on no log line or message of this process shows them
            redact.remember(found[n], name=n)
        return {n: SecretValue(found[n], name=n) for n in wanted}

    @abstractmethod
    def fetch(self, names: list[str], ctx: SecretsContext) -> Mapping[str, str]:
        """The values this provider has for ``names``; leave out the ones it lacks."""

    def missing_hint(self, missing: list[str], ctx: SecretsContext) -> str:
        """How to provide the missing names (shown under the error)."""
        return f"provide them through the {self.id} secrets provider"


def _unique(names: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for name in names:
        seen.setdefault(name, None)
    return list(seen)

"""Does every declared secret of an environment resolve? The engine of ``secrets check``.

Each name under ``environments.<env>.secrets`` is asked of the environment's
secrets provider. The report holds names and ``ok``/``missing`` only: values are
resolved (so a provider that cannot produce them fails here, before a deploy)
and dropped at once; they never reach the report, its JSON or its text.

Example::

    from stagecraft.ops.secrets import check_secrets

    report = check_secrets(loaded, "production")
    for entry in report.entries:
        print(entry.name, entry.status)      # POSTGRES_PASSWORD ok
    report.raise_for_missing()               # SecretsMissing (exit 2) naming every gap
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stagecraft.config.loader import LoadedConfig
from stagecraft.errors import ExitCode, StagecraftError


class SecretsMissing(StagecraftError):
    """Declared secrets of an environment that its provider does not have (names only)."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class SecretStatus:
    """One declared secret: ``ok`` or ``missing``."""

    name: str
    status: str


@dataclass(frozen=True)
class SecretsReport:
    """Every declared secret of ``env`` and whether its provider resolves it."""

    env: str
    provider: str
    entries: tuple[SecretStatus, ...]
    hint: str | None = None

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.entries if e.status == "missing")

    def to_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "provider": self.provider,
            "secrets": [{"name": e.name, "status": e.status} for e in self.entries],
            "missing": list(self.missing),
        }

    def raise_for_missing(self) -> None:
        """Raise :class:`SecretsMissing` listing every missing name, if any."""
        if not self.missing:
            return
        count = len(self.missing)
        raise SecretsMissing(
            f"{self.env}: {count} secret{'s' if count > 1 else ''} missing from the "
            f"{self.provider} secrets provider: {', '.join(self.missing)}",
            hint=self.hint or f"provide them through the {self.provider} secrets provider",
        )


def check_secrets(
    loaded: LoadedConfig, env: str, *, environ: Mapping[str, str] | None = None
) -> SecretsReport:
    """Resolve every declared secret of ``env``; names and statuses only (see module doc)."""
    from stagecraft.providers import registry
    from stagecraft.providers.secrets import SecretsContext, SecretsError

    names = list(dict.fromkeys(loaded.environment(env).secrets))
    provider_id, options = loaded.config.secrets_provider_for(env)
    provider = registry("secrets").create(provider_id, options)
    context = SecretsContext(
        root=loaded.root, environ=dict(os.environ if environ is None else environ)
    )
    missing: set[str] = set()
    hint: str | None = None
    try:
        provider.resolve(names, context)
    except SecretsError as exc:
        if not exc.missing:
            raise
        missing, hint = set(exc.missing), exc.hint
    entries = tuple(SecretStatus(n, "missing" if n in missing else "ok") for n in names)
    return SecretsReport(env, provider_id, entries, hint)

"""The ``command`` secrets provider: secrets printed by a command (a password manager's CLI)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import Field

from stagecraft import log
from stagecraft.providers.base import ProviderConfig
from stagecraft.providers.builtin._dev import Command
from stagecraft.providers.builtin.secrets_dotenv import DotenvSyntaxError, parse_dotenv
from stagecraft.providers.secrets import SecretsContext, SecretsError, SecretsProvider
from stagecraft.runtime.process import Completed, run

logger = logging.getLogger(__name__)

NAME_PLACEHOLDER = "{name}"


class CommandSecretsConfig(ProviderConfig):
    """``secrets_provider: {provider: command, command: ..., mode: ...}``."""

    command: Command
    mode: Literal["per_name", "dotenv"] = "per_name"
    timeout: float = Field(default=30.0, gt=0)


class CommandSecrets(SecretsProvider):
    """Secrets printed by a command: ``pass``, ``op``, ``bw``, ``vault``, ``sops``, a script.

    Config keys:

    - ``command`` (required): a list of arguments, or one string split like a
      shell would (no shell runs it). It runs in the project root with the
      environment of ``stagecraft``.
    - ``mode``: ``per_name`` (default) runs the command once per secret, with
      ``{name}`` in its arguments replaced by the secret's name (also exported as
      ``STAGECRAFT_SECRET_NAME``); its stdout, minus trailing newlines, is the
      value. ``dotenv`` runs it once (with ``STAGECRAFT_SECRET_NAMES`` set to the
      names, space-separated) and reads ``KEY=VALUE`` lines from its stdout.
    - ``timeout``: seconds per run (default 30).

    A run that prints nothing counts as "not found". A run that fails is
    reported with the secret's name, the exit code and the last line of stderr;
    stdout is never shown or logged.

    Example ``stagecraft.yml``::

        environments:
          production:
            secrets: [POSTGRES_PASSWORD, STRIPE_KEY]
            secrets_provider:
              provider: command
              command: [pass, show, "shop/production/{name}"]

    or, with a tool that prints a whole dotenv file::

            secrets_provider:
              provider: command
              command: sops --decrypt --output-type dotenv secrets/production.env
              mode: dotenv

    >>> from pathlib import Path
    >>> provider = CommandSecrets(CommandSecrets.Config.model_validate(
    ...     {"command": ["printf", "value-of-{name}"]}))
    >>> values = provider.resolve(["API_KEY"], SecretsContext(root=Path(".")))
    >>> values["API_KEY"], values["API_KEY"].reveal()
    (SecretValue('API_KEY', '***'), 'value-of-API_KEY')
    """

    id: ClassVar[str] = "command"
    Config: ClassVar[type[ProviderConfig]] = CommandSecretsConfig
    config: CommandSecretsConfig

    def fetch(self, names: list[str], ctx: SecretsContext) -> Mapping[str, str]:
        if self.config.mode == "dotenv":
            return self._fetch_dotenv(names, ctx)
        found: dict[str, str] = {}
        failures: list[str] = []
        for name in names:
            result = self._run(self.argv_for(name), ctx, {"STAGECRAFT_SECRET_NAME": name})
            if not result.ok:
                failures.append(f"{name} (exit {result.returncode}{_stderr_tail(result)})")
                continue
            value = result.stdout.rstrip("\r\n")
            if value:
                found[name] = value
        if failures:
            raise SecretsError(
                f"secrets command `{self.config.command[0]}` failed for "
                f"{len(failures)} secret{'s' if len(failures) > 1 else ''}: {', '.join(failures)}",
                hint=f"run `{self.shown_command()}` yourself to see why",
            )
        return found

    def argv_for(self, name: str) -> tuple[str, ...]:
        """The command for one secret, with ``{name}`` substituted."""
        return tuple(arg.replace(NAME_PLACEHOLDER, name) for arg in self.config.command)

    def shown_command(self) -> str:
        """The configured command, for messages."""
        return " ".join(self.config.command)

    def missing_hint(self, missing: list[str], ctx: SecretsContext) -> str:
        return f"`{self.shown_command()}` printed nothing for them: add them to its store"

    def _fetch_dotenv(self, names: list[str], ctx: SecretsContext) -> Mapping[str, str]:
        result = self._run(self.config.command, ctx, {"STAGECRAFT_SECRET_NAMES": " ".join(names)})
        if not result.ok:
            raise SecretsError(
                f"secrets command `{self.config.command[0]}` exited with "
                f"{result.returncode}{_stderr_tail(result)}",
                hint=f"run `{self.shown_command()}` yourself to see why",
            )
        try:
            values = parse_dotenv(result.stdout)
        except DotenvSyntaxError as exc:
            raise SecretsError(
                f"output of secrets command `{self.config.command[0]}` is not dotenv: "
                f"{exc.reason} (output line {exc.line})",
                hint="with mode: dotenv the command must print KEY=VALUE lines",
            ) from None
        return {name: values[name] for name in names if name in values}

    def _run(self, argv: tuple[str, ...], ctx: SecretsContext, extra: dict[str, str]) -> Completed:
        log.event(logger, logging.DEBUG, f"running secrets command `{argv[0]}`", phase="secrets")
        return run(
            argv,
            cwd=ctx.root,
            env=dict(ctx.environ),
            extra_env=extra,
            timeout=self.config.timeout,
            check=False,
            hint="install the command, or change secrets_provider.command in stagecraft.yml",
        )


def _stderr_tail(result: Completed) -> str:
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    return f": {lines[-1][:200]}" if lines else ""

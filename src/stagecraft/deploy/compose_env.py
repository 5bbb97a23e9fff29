"""The compose model of a deployed environment: no local secrets, no local env files.

For a laptop, Compose interpolates ``${VAR}`` from the shell and the project's
``.env``, and inlines ``env_file:`` entries. None of that may reach a server
(ADR 0006): the shell of whoever deploys is not production's configuration, and
whatever Compose interpolates ends up in the world-readable ``docker-compose.yml``
on every host. So an environment's model is loaded with an environment that
holds only

- the environment's clear values (``environments.<env>.env``), and
- one placeholder per declared secret (``environments.<env>.secrets``),

with the project's ``.env`` ignored and ``env_file:`` left unread. Rendering
(:mod:`stagecraft.deploy.render`) then finds the placeholders: a secret inside a
service's ``environment`` (``DATABASE_URL: postgres://app:${POSTGRES_PASSWORD}@db``)
moves that key to the service's 0600 env file, as a template resolved with the
secret's value only when the file is written; a secret anywhere else (labels,
command, volumes, ...) is refused, naming the service and key.

Example::

    from stagecraft.deploy.compose_env import environment_compose

    compose = environment_compose(loaded, "production")
    compose.services["api"].environment["DATABASE_URL"]
    # 'postgres://app:@@stagecraft-secret-5f1c...-POSTGRES_PASSWORD@@@db/app'
    compose.template("postgres://app:@@stagecraft-secret-5f1c...-POSTGRES_PASSWORD@@@db/app")
    # ('postgres://app:', SecretRef('POSTGRES_PASSWORD'), '@db/app')
"""

from __future__ import annotations

import json
import re
import secrets as _random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stagecraft.compose.model import ComposeProject, load_compose
from stagecraft.config.loader import LoadedConfig


@dataclass(frozen=True)
class SecretRef:
    """A declared secret's value, by name, inside a template."""

    name: str


Template = tuple[str | SecretRef, ...]
"""A value made of literal text and secret references."""


@dataclass(frozen=True)
class EnvironmentCompose:
    """An environment's compose model and the placeholders its secrets were given."""

    project: ComposeProject
    nonce: str
    secrets: tuple[str, ...]

    @property
    def marker(self) -> str:
        """The text every placeholder of this load starts with."""
        return f"@@stagecraft-secret-{self.nonce}-"

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(rf"{re.escape(self.marker)}([A-Za-z_][A-Za-z0-9_]*)@@")

    def holds_secret(self, value: Any) -> bool:
        """Whether a placeholder appears anywhere in ``value`` (one C-speed scan)."""
        return self.marker in json.dumps(value, default=str)

    def template(self, value: str) -> Template | None:
        """``value`` split into text and :class:`SecretRef`; None when it holds no secret."""
        parts: list[str | SecretRef] = []
        last = 0
        for match in self.pattern.finditer(value):
            if match.start() > last:
                parts.append(value[last : match.start()])
            parts.append(SecretRef(match.group(1)))
            last = match.end()
        if not parts:
            return None
        if last < len(value):
            parts.append(value[last:])
        return tuple(parts)

    def secrets_in(
        self, value: Any, path: tuple[str | int, ...] = ()
    ) -> Iterator[tuple[tuple[str | int, ...], str]]:
        """Every (key path, secret name) where a placeholder appears inside ``value``."""
        if isinstance(value, str):
            for match in self.pattern.finditer(value):
                yield path, match.group(1)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                yield from self.secrets_in(str(key), (*path, str(key)))
                yield from self.secrets_in(item, (*path, str(key)))
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                yield from self.secrets_in(item, (*path, index))


def placeholder(nonce: str, name: str) -> str:
    """The text standing for secret ``name`` while Compose interpolates."""
    return f"@@stagecraft-secret-{nonce}-{name}@@"


def environment_compose(loaded: LoadedConfig, env: str) -> EnvironmentCompose:
    """Load the compose model of ``env`` (see the module docstring).

    With the local model loaded (``loaded.compose``), its validated
    ``x-stagecraft`` blocks are reused and this costs one Compose call; without
    it, two (as any load).
    """
    local = loaded.compose
    environment = loaded.environment(env)
    nonce = _random.token_hex(8)
    environ = {name: str(value) for name, value in environment.env.items()}
    environ.update({name: placeholder(nonce, name) for name in environment.secrets})
    files = list(local.files) if local is not None else loaded.compose_files()
    project = load_compose(
        files,
        project_directory=local.project_directory if local is not None else None,
        project_name=loaded.config.project.name,
        environ=environ,
        dotenv=False,
        resolve_env_files=False,
        extensions=(
            {name: svc.x_stagecraft for name, svc in local.services.items()}
            if local is not None
            else None
        ),
        unset_hint=f"environment {env} does not set it (the local shell is not used for a "
        f"deploy); add it to environments.{env}.env if the compose file needs it",
    )
    return EnvironmentCompose(project, nonce, tuple(environment.secrets))


def resolve(template: Template, values: Mapping[str, str]) -> str:
    """The value ``template`` stands for, with each secret's value; KeyError for a missing one.

    The template's text comes from ``docker compose config``, which writes a
    literal ``$`` as ``$$``; the value (an env file's, a secret file's) is not
    interpolated again, so it gets the ``$`` itself.

    >>> resolve(("pa$$", SecretRef("PW"), "@db"), {"PW": "s$"})
    'pa$s$@db'
    """
    return "".join(
        part.replace("$$", "$") if isinstance(part, str) else values[part.name] for part in template
    )


def describe(template: Template) -> str:
    """``template`` with secrets written as ``${NAME}`` (for hashes and messages, no values)."""
    return "".join(
        part.replace("$", "$$") if isinstance(part, str) else f"${{{part.name}}}"
        for part in template
    )


def load_for_environment(
    explicit: Path | None, env: str, *, cwd: Path | None = None
) -> tuple[LoadedConfig, EnvironmentCompose]:
    """``stagecraft.yml`` with ``env``'s own compose model as ``compose`` (for ``plan``).

    A command that renders an environment and builds nothing needs no local
    model: this loads (and cross-checks the config against) the environment's
    model only, so ``plan`` costs the same Compose calls as any load.
    """
    from stagecraft.config.loader import load_project

    found: list[EnvironmentCompose] = []

    def loader(loaded: LoadedConfig) -> ComposeProject:
        found.append(environment_compose(loaded, env))
        return found[-1].project

    loaded = load_project(explicit, env=env, cwd=cwd, compose_loader=loader)
    return loaded, found[-1]

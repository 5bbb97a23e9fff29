"""Find, read, interpolate and validate ``stagecraft.yml``; cross-check it with compose.

Every problem of a file is collected and raised together as one
:class:`~stagecraft.errors.ConfigError` whose lines read
``file:line: key.path: message``.

Example::

    from stagecraft.config.loader import load_project

    loaded = load_project(env="staging")          # finds stagecraft.yml upwards
    staging = loaded.environment("staging")
    for name, host in staging.hosts.items():
        print(name, host.address, staging.services_on(name))
    print(loaded.line_of("environments", "staging", "hosts"))
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from stagecraft.compose.model import (
    COMPOSE_FILENAMES,
    ComposeError,
    ComposeProject,
    discover_compose_file,
    load_compose,
)
from stagecraft.config.checks import (
    check_addresses,
    check_compose_services,
    check_semantics,
    service_references,
)
from stagecraft.config.document import Document, Path_, display_path, parse_document, render_path
from stagecraft.config.infra_state import merge_into
from stagecraft.config.interpolate import interpolate_tree
from stagecraft.config.issues import report_validation_error
from stagecraft.config.locate import INIT_HINT, find_config
from stagecraft.config.models import EnvironmentConfig, HostConfig, StagecraftConfig
from stagecraft.config.provider_blocks import check_provider_blocks
from stagecraft.errors import ConfigError, ConfigIssue, ConfigNotFound, UnknownName, UsageError
from stagecraft.log import event

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedConfig:
    """A validated ``stagecraft.yml`` with where each key was, and the compose model if loaded."""

    path: Path
    root: Path
    config: StagecraftConfig
    compose: ComposeProject | None = None
    lines: Mapping[Path_, int] = field(default_factory=dict, repr=False)
    sources: Mapping[Path_, tuple[str, ...]] = field(default_factory=dict, repr=False)
    data: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def line_of(self, *path: str | int) -> int:
        """Line of the key or item at ``path`` (its deepest existing parent; 0 if unknown)."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(tuple(path[:end]))
            if line:
                return line
        return 0

    def environment(self, name: str, *, provisioned: bool = True) -> EnvironmentConfig:
        """The environment ``name``; UnknownName listing and suggesting the known ones otherwise.

        With ``provisioned`` (the default), every host must have an address: a
        host that ``infra up`` has not created yet is a UsageError saying so.
        """
        try:
            found = self.config.environments[name]
        except KeyError:
            raise UnknownName(
                "environment",
                name,
                list(self.config.environments),
                hint=f"add it under `environments:` in {display_path(self.path)}",
            ) from None
        missing = [host for host, config in found.hosts.items() if config.address is None]
        if provisioned and missing:
            raise UsageError(
                f"environment {name}: {', '.join(missing)} "
                f"{'has' if len(missing) == 1 else 'have'} no address yet",
                hint=f"run `stagecraft infra up --env {name}` to create "
                f"{'it' if len(missing) == 1 else 'them'} (the addresses are recorded in "
                f".stagecraft/infra/{name}.yml), or set `address:` in {display_path(self.path)}",
            )
        return found

    def host(self, env: str, name: str) -> HostConfig:
        """Host ``name`` of environment ``env``; UnknownName suggesting the closest otherwise."""
        environment = self.environment(env)
        try:
            return environment.hosts[name]
        except KeyError:
            raise UnknownName(
                "host",
                name,
                list(environment.hosts),
                where=f"environment {env}",
                hint=f"hosts are listed under `environments.{env}.hosts` in "
                f"{display_path(self.path)}",
            ) from None

    def check_service(self, name: str) -> None:
        """UnknownName, suggesting the closest, unless ``name`` is a compose service.

        The compose model decides when it is loaded; otherwise the services
        that ``stagecraft.yml`` names (roles, routes, dev infra, databases).
        """
        if self.compose is not None:
            known = sorted(self.compose.services)
            where = self.compose.display_name
        else:
            known = sorted({service for _, service in service_references(self.config)})
            where = display_path(self.path)
        if name not in known:
            raise UnknownName("service", name, known, where=where)

    def compose_files(self) -> list[Path]:
        """The compose file(s) of the project: ``compose:`` or Compose's default discovery."""
        if self.config.compose:
            return [self.root / name for name in self.config.compose]
        found = discover_compose_file(self.root)
        return [found] if found else []


def load_config(path: Path, *, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read and validate ``path``; every problem raised together as one ConfigError."""
    loaded, doc = _load(path, environ)
    if doc.issues or loaded is None:
        raise _error(doc)
    return loaded


def load_project(
    explicit: Path | None = None,
    *,
    env: str | None = None,
    check_compose: bool = True,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
    compose_loader: Callable[[LoadedConfig], ComposeProject] | None = None,
    provisioned: bool = True,
    on_config: Callable[[LoadedConfig], None] | None = None,
) -> LoadedConfig:
    """Find and load ``stagecraft.yml``, check ``env`` exists, load and cross-check compose.

    Services named in the config but missing from compose are reported at the
    ``stagecraft.yml`` lines that name them, together with every other issue.
    ``compose_loader`` loads the compose model instead of :func:`load_compose`
    with ``environ`` (a deployed environment's own model, ADR 0006). With
    ``provisioned`` (the default) every host of ``env`` must have an address.
    ``on_config`` gets the valid config before the compose model is loaded (a
    deploy starts its SSH connections there).
    """
    path = find_config(explicit, cwd)
    event(logger, logging.DEBUG, f"loading {path}", phase="config")
    loaded, doc = _load(path, environ, cwd)
    if loaded is None:
        raise _error(doc)
    if env is not None and not doc.issues:
        loaded.environment(env, provisioned=provisioned)
    if on_config is not None and not doc.issues:
        on_config(loaded)
    if check_compose:
        compose = _load_compose(loaded, doc, environ, compose_loader)
        if compose is not None:
            check_compose_services(doc, loaded.config, compose)
            loaded = replace(loaded, compose=compose)
    if doc.issues:
        raise _error(doc)
    return loaded


def _load(
    path: Path, environ: Mapping[str, str] | None, cwd: Path | None = None
) -> tuple[LoadedConfig | None, Document]:
    """The config (None if its shape is invalid) and the document holding every issue."""
    shown = display_path(path, cwd)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigNotFound(f"config file {shown} not found", hint=INIT_HINT) from None
    except (OSError, UnicodeDecodeError) as exc:
        doc = Document(shown)
        doc.issues.append(ConfigIssue(shown, 0, "", f"cannot read the file: {exc}"))
        return None, doc
    doc = parse_document(text, shown)
    if doc.issues or not isinstance(doc.data, dict):
        return None, doc
    resolved = interpolate_tree(doc.data, os.environ if environ is None else environ)
    data: dict[str, Any] = resolved.data
    merge_into(data, path.absolute().parent)
    check_addresses(doc, data)
    check_provider_blocks(doc, data)
    try:
        config = StagecraftConfig.model_validate(data)
    except ValidationError as exc:
        report_validation_error(doc, exc, root=StagecraftConfig, data=data)
        config = None
    if resolved.errors:
        # A value that could not be interpolated is reported once, not again by validation.
        failed = {render_path(where) for where, _ in resolved.errors}
        doc.issues = [issue for issue in doc.issues if issue.path not in failed]
        for where, error in resolved.errors:
            doc.issue(where, str(error), error.hint)
    if config is None or resolved.errors:
        return None, doc
    check_semantics(doc, config)
    root = path.absolute().parent
    loaded = LoadedConfig(path.absolute(), root, config, None, doc.lines, resolved.sources, data)
    return loaded, doc


def _load_compose(
    loaded: LoadedConfig,
    doc: Document,
    environ: Mapping[str, str] | None,
    loader: Callable[[LoadedConfig], ComposeProject] | None = None,
) -> ComposeProject | None:
    """The compose model; a missing ``compose:`` file is an issue, Compose's errors are raised."""
    files = loaded.compose_files()
    if not files:
        if doc.issues:
            return None
        raise ComposeError(
            f"no compose file in {display_path(loaded.root)} "
            f"(looked for {', '.join(COMPOSE_FILENAMES)})",
            hint="create one, or set `compose:` in stagecraft.yml",
        )
    absent = [index for index, file in enumerate(files) if not file.is_file()]
    for index in absent:
        where: Path_ = ("compose", index) if _is_list(loaded) else ("compose",)
        doc.issue(where, f"compose file {display_path(files[index])} not found")
    if absent:
        return None
    try:
        if loader is not None:
            return loader(loaded)
        return load_compose(files, project_name=loaded.config.project.name, environ=environ)
    except ConfigError as exc:  # invalid x-stagecraft blocks: reported with everything else
        doc.issues.extend(exc.issues)
        return None
    except ComposeError:
        if doc.issues:  # the config's own problems come first; Compose may fail on them
            return None
        raise


def _is_list(loaded: LoadedConfig) -> bool:
    return isinstance(loaded.data.get("compose"), list)


def _error(doc: Document) -> ConfigError:
    """One error holding every distinct issue of ``doc``."""
    issues = list(dict.fromkeys(doc.issues))
    hint = None if len(issues) == 1 else f"{len(issues)} problems; fix the lines named above"
    return ConfigError(issues, hint=hint)

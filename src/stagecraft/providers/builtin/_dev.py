"""Config pieces shared by the built-in providers (env maps, commands, ports, paths, dev blocks)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator, model_validator

from stagecraft.providers.backend import (
    BuildPlan,
    BuildRequest,
    ComposeBuild,
    DevContext,
    DevProcess,
    DockerBuild,
    Readiness,
    signal_number,
)
from stagecraft.providers.base import ProviderConfig

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _env_map(value: Any) -> Any:
    """Coerce YAML scalars (``PORT: 4000``) to strings; reject what has no clear text form."""
    if not isinstance(value, Mapping):
        return value
    out: dict[Any, Any] = {}
    for key, item in value.items():
        if isinstance(item, bool) or item is None:
            raise ValueError(f"env {key}: write the value as a quoted string (got {item!r})")
        out[key] = str(item) if isinstance(item, int | float) else item
    return out


def check_env_names(value: dict[str, str]) -> dict[str, str]:
    """``value`` if every key is a valid environment variable name; ValueError otherwise."""
    bad = [k for k in value if not ENV_NAME.fullmatch(k)]
    if bad:
        raise ValueError(f"invalid environment variable name(s): {', '.join(bad)}")
    return value


EnvVars = Annotated[dict[str, str], BeforeValidator(_env_map)]
"""``{NAME: value}``; numbers are accepted and turned into strings."""


def _command(value: Any) -> Any:
    if isinstance(value, str):
        try:
            parts = shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot split command {value!r}: {exc}") from None
        return tuple(parts)
    return value


Command = Annotated[tuple[str, ...], BeforeValidator(_command), Field(min_length=1)]
"""A command as a list of arguments, or one string split like a shell would (no shell runs)."""

Port = Annotated[int, Field(ge=1, le=65535)]


def _relative(value: str) -> str:
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(f"{value!r} must be a path inside the project (relative, no '..')")
    return value


RelPath = Annotated[str, BeforeValidator(lambda v: _relative(v) if isinstance(v, str) else v)]
"""A path relative to the project root, staying inside it."""


class ReadyConfig(ProviderConfig):
    """``ready: {http: /healthz}`` or ``ready: {log: "listening on"}``, optional ``timeout``."""

    http: str | None = None
    log: str | None = None
    timeout: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _one_probe(self) -> ReadyConfig:
        if (self.http is None) == (self.log is None):
            raise ValueError("ready needs exactly one of 'http' (a path) or 'log' (a pattern)")
        if self.http is not None and not self.http.startswith("/"):
            raise ValueError(f"ready.http {self.http!r} must be a path starting with '/'")
        if self.log is not None:
            try:
                re.compile(self.log)
            except re.error as exc:
                raise ValueError(f"ready.log {self.log!r} is not a valid pattern: {exc}") from None
        return self

    def readiness(self) -> Readiness:
        """The :class:`Readiness` value this config describes."""
        return Readiness(http_path=self.http, log_pattern=self.log, timeout=self.timeout)


class StopConfig(ProviderConfig):
    """How to stop a dev server: a signal, then a kill after ``stop_timeout`` seconds."""

    stop_signal: str = "SIGTERM"
    stop_timeout: float = Field(default=10.0, gt=0)

    @field_validator("stop_signal")
    @classmethod
    def _known_signal(cls, value: str) -> str:
        return signal_number(value).name


class DevCommandConfig(StopConfig):
    """The ``dev`` block of the generic providers (SPEC 3.1)."""

    command: Command
    workdir: RelPath = "."
    port: Port | None = None
    env: EnvVars = Field(default_factory=dict)
    ready: ReadyConfig | None = None

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        return check_env_names(value)

    @model_validator(mode="after")
    def _http_probe_needs_port(self) -> DevCommandConfig:
        if self.ready is not None and self.ready.http is not None and self.port is None:
            raise ValueError("ready.http probes the dev server's port: set dev.port too")
        return self


class DockerBuildConfig(ProviderConfig):
    """``build: {context, dockerfile, args, target}``: a Dockerfile build instead of compose's.

    ``context`` is relative to the project root, ``dockerfile`` to the context
    (as in compose).
    """

    context: RelPath = "."
    dockerfile: str | None = None
    args: EnvVars = Field(default_factory=dict)
    target: str | None = None

    def plan(self, root: Path) -> DockerBuild:
        """The :class:`DockerBuild` for a project rooted at ``root``."""
        context = root / self.context
        dockerfile = context / self.dockerfile if self.dockerfile else None
        return DockerBuild(
            context=context, dockerfile=dockerfile, args=dict(self.args), target=self.target
        )


def build_plan(build: DockerBuildConfig | None, service: str, req: BuildRequest) -> BuildPlan:
    """A Dockerfile build when configured, else the compose service's own build."""
    return build.plan(req.root) if build else ComposeBuild(service=service)


def dev_env(
    ctx: DevContext, computed: Mapping[str, str], user: Mapping[str, str]
) -> dict[str, str]:
    """Core env, then what the provider computes, then the user's ``env`` (which wins)."""
    return {**ctx.env, **computed, **user}


def command_dev_process(
    name: str, dev: DevCommandConfig, ctx: DevContext, *, api_url: bool = False
) -> DevProcess:
    """The dev server of a generic provider: ``dev.command`` with PORT and the public URLs.

    ``api_url`` also passes ``STAGECRAFT_API_URL`` (frontends call the backend through it).
    """
    computed: dict[str, str] = {}
    if dev.port:
        computed["PORT"] = str(dev.port)
    if ctx.public_url:
        computed["STAGECRAFT_PUBLIC_URL"] = ctx.public_url
    if api_url and ctx.api_url:
        computed["STAGECRAFT_API_URL"] = ctx.api_url
    return DevProcess(
        name=name,
        argv=dev.command,
        cwd=ctx.root / dev.workdir,
        env=dev_env(ctx, computed, dev.env),
        port=dev.port,
        readiness=dev.ready.readiness() if dev.ready else Readiness(),
        stop_signal=dev.stop_signal,
        stop_timeout=dev.stop_timeout,
    )

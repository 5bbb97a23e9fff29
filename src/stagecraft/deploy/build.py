"""The build plan of a release (a value) and its local execution with ``docker build``.

Every image of a release: compose services with a ``build:`` section, and the
backend/frontend providers' builds (``DockerBuild``, ``BuildCommand``, or
``ComposeBuild`` = the service's own ``build:``), each tagged
``<registry-or-project>/<service>:<version>`` (ADR 0005). Every ``docker build``
gets the build arg ``STAGECRAFT_VERSION=<version>`` so an image can report it.

Build-arg values never go on the command line (where ``ps`` and ``--verbose``
logs would show them): the argv says ``--build-arg NAME`` and the value rides
in the ``docker`` process's environment, where the docker CLI reads a
valueless ``--build-arg`` from (:func:`build_arg_env`). This works with the
legacy builder and BuildKit alike.

Example::

    from stagecraft.deploy.build import execute_build, plan_build
    from stagecraft.deploy.release import new_release, resolve_version

    release = new_release(loaded.config, "production", resolve_version(loaded.root))
    plan = plan_build(loaded, release)
    for image in plan.images:
        print(image.service, image.image)
    results = execute_build(plan, on_line=lambda service, line: print(service, line))
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from stagecraft import log
from stagecraft.compose.model import ComposeProject
from stagecraft.config.loader import LoadedConfig
from stagecraft.config.models import ProviderSelection
from stagecraft.deploy.release import Release
from stagecraft.errors import ExitCode, StagecraftError
from stagecraft.providers.backend import BuildCommand, BuildRequest, ComposeBuild, DockerBuild
from stagecraft.runtime import process

logger = logging.getLogger(__name__)

VERSION_ARG = "STAGECRAFT_VERSION"
_CLIENT_ENV = re.compile(r"DOCKER_\w*|PATH|HOME")
"""Variables the docker client itself reads: a build arg by that name cannot travel in env."""
BuildSource = Literal["compose", "backend", "frontend"]
OnBuildLine = Callable[[str, str], None]
"""Called as ``on_line(service, line)`` for every output line of a build."""


class BuildError(StagecraftError):
    """An image of the release cannot be planned or built."""

    exit_code = ExitCode.FAILED


@dataclass(frozen=True)
class ImageBuild:
    """How one service's release image is built: a ``docker build`` or a build command."""

    service: str
    image: str
    source: BuildSource
    context: Path | None = None
    dockerfile: Path | None = None
    args: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    argv: tuple[str, ...] = ()
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    platform: str | None = None  # `docker build --platform` (compose `platform:`, --platform)

    @property
    def kind(self) -> Literal["docker", "command"]:
        """``docker`` for a ``docker build``, ``command`` for a provider's own command."""
        return "command" if self.argv else "docker"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view (command env values are not shown, only their names; build-arg
        values redacted, whole when the name looks secret)."""
        data: dict[str, Any] = {
            "service": self.service,
            "image": self.image,
            "source": self.source,
            "kind": self.kind,
        }
        if self.kind == "docker":
            data.update(
                context=str(self.context),
                dockerfile=str(self.dockerfile) if self.dockerfile else None,
                args={key: _shown_arg(key, value) for key, value in sorted(self.args.items())},
                target=self.target,
                platform=self.platform,
            )
        else:
            data.update(argv=list(self.argv), cwd=str(self.cwd), env=sorted(self.env))
        return data


@dataclass(frozen=True)
class BuildPlan:
    """Every image of a release, in service-name order."""

    release: Release
    images: tuple[ImageBuild, ...]

    def image_for(self, service: str) -> str | None:
        """The release tag of ``service`` when the release builds it."""
        for item in self.images:
            if item.service == service:
                return item.image
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.release.version.value,
            "dirty": self.release.version.dirty,
            "images": [item.to_json() for item in self.images],
        }


@dataclass(frozen=True)
class BuildResult:
    """What happened to one image: ``built`` or ``skipped`` (tag already present)."""

    service: str
    image: str
    status: Literal["built", "skipped"]
    duration: float

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "image": self.image,
            "status": self.status,
            "duration": round(self.duration, 3),
        }


def plan_build(loaded: LoadedConfig, release: Release, *, platform: str | None = None) -> BuildPlan:
    """The build plan of ``release``: provider builds first claim their service.

    A ``docker build`` targets ``platform`` when given, else its compose
    service's ``platform:`` (so an arm64 laptop builds what an amd64 host runs).
    """
    compose = _compose(loaded)
    images: dict[str, ImageBuild] = {}
    for source, selection in (
        ("backend", loaded.config.backend),
        ("frontend", loaded.config.frontend),
    ):
        if selection is not None:
            item = _provider_build(loaded, compose, release, source, selection)
            images[item.service] = item
    for name, service in compose.services.items():
        if service.build is not None and name not in images:
            images[name] = _compose_build(compose, name, release.image_for(name), "compose")
    for name, item in images.items():
        declared = compose.services[name].raw.get("platform") if name in compose.services else None
        wanted = platform or (str(declared) if declared else None)
        if item.kind == "docker" and wanted:
            images[name] = replace(item, platform=wanted)
    return BuildPlan(release, tuple(images[name] for name in sorted(images)))


def built_services(loaded: LoadedConfig) -> frozenset[str]:
    """Services whose image the release builds (without asking providers for details)."""
    compose = _compose(loaded)
    names = {name for name, service in compose.services.items() if service.build is not None}
    for kind, selection in (
        ("backend", loaded.config.backend),
        ("frontend", loaded.config.frontend),
    ):
        if selection is not None:
            names.add(_provider(kind, selection).service)
    return frozenset(names)


def execute_build(
    plan: BuildPlan,
    *,
    force: bool = False,
    no_cache: bool = False,
    on_line: OnBuildLine | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[BuildResult]:
    """Build every image of ``plan`` locally, in order; return one result per image.

    An image whose tag already exists locally is skipped unless ``force`` or
    ``no_cache`` is set, or the version is dirty (a dirty tag does not name one
    tree). Raises :class:`BuildError` naming the service when a build fails.
    """
    env = dict(os.environ if environ is None else environ)
    env.setdefault("DOCKER_BUILDKIT", "1" if _has_buildx(env) else "0")
    rebuild = force or no_cache or plan.release.version.dirty
    results: list[BuildResult] = []
    for item in plan.images:
        started = time.monotonic()
        if not rebuild and image_exists(item.image, env):
            log.event(logger, logging.INFO, f"{item.image} exists, skipped", service=item.service)
            results.append(BuildResult(item.service, item.image, "skipped", 0.0))
            continue
        log.event(logger, logging.INFO, f"building {item.image}", service=item.service)
        _run_build(item, plan.release, env, no_cache=no_cache, on_line=on_line)
        results.append(BuildResult(item.service, item.image, "built", time.monotonic() - started))
    return results


def docker_build_argv(item: ImageBuild, release: Release, *, no_cache: bool = False) -> list[str]:
    """The ``docker build`` command line of a docker-kind ``item`` (build-arg names only)."""
    argv = ["docker", "build", "-t", item.image]
    if item.dockerfile is not None:
        argv += ["-f", str(item.dockerfile)]
    if item.target:
        argv += ["--target", item.target]
    if item.platform:
        argv += ["--platform", item.platform]
    for key in sorted(build_arg_env(item, release)):
        argv += ["--build-arg", key]
    argv += ["--label", f"stagecraft.project={release.project}"]
    argv += ["--label", f"stagecraft.version={release.version.value}"]
    if no_cache:
        argv.append("--no-cache")
    argv.append(str(item.context))
    return argv


def build_arg_env(item: ImageBuild, release: Release) -> dict[str, str]:
    """The build args of ``item`` as the environment of its ``docker build``.

    Raises :class:`BuildError` for a build arg named like a variable the docker
    client reads itself (``DOCKER_HOST``, ``PATH``, ...): it would redirect the
    client instead of reaching the build.
    """
    args = {**item.args, VERSION_ARG: release.version.value}
    clashing = sorted(key for key in args if _CLIENT_ENV.fullmatch(key))
    if clashing:
        raise BuildError(
            f"service {item.service}: build arg {', '.join(clashing)} has the name of a "
            "variable the docker client reads",
            hint="rename the build arg (ARG in the Dockerfile and args: in the compose file)",
        )
    return args


def images_present(
    tags: Sequence[str], environ: Mapping[str, str] | None = None
) -> dict[str, bool]:
    """Which of ``tags`` the local daemon has: one ``docker image inspect`` when it has all."""
    unique = sorted(set(tags))
    if not unique:
        return {}
    result = process.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", *unique],
        env=environ,
        check=False,
        timeout=60,
    )
    if result.ok and len(result.stdout.split()) == len(unique):
        return dict.fromkeys(unique, True)
    return {tag: image_exists(tag, environ) for tag in unique}


def image_exists(tag: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether the local Docker daemon has an image tagged ``tag``."""
    result = process.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", tag],
        env=environ,
        check=False,
        timeout=60,
    )
    return result.ok


def _run_build(
    item: ImageBuild,
    release: Release,
    env: Mapping[str, str],
    *,
    no_cache: bool,
    on_line: OnBuildLine | None,
) -> None:
    """Run one build, streaming its lines; BuildError naming the service on failure."""

    def forward(_stream: str, line: str) -> None:
        if on_line is not None:
            on_line(item.service, line)

    if item.kind == "docker":
        argv = docker_build_argv(item, release, no_cache=no_cache)
        cwd = item.context
        run_env: dict[str, str] = {**env, **build_arg_env(item, release)}
    else:
        argv = list(item.argv)
        cwd = item.cwd
        run_env = {**env, VERSION_ARG: release.version.value, **item.env}
    result = process.run(argv, cwd=cwd, env=run_env, check=False, on_line=forward)
    if not result.ok:
        detail = _failure_line(result.output, prefer_error=item.kind == "command")
        raise BuildError(
            f"building {item.image} for service {item.service} failed "
            f"(exit {result.returncode}){detail}",
            hint="run `stagecraft build -v` to see the whole build output",
        )
    if item.kind == "command" and not image_exists(item.image, env):
        raise BuildError(
            f"the build command of service {item.service} succeeded but did not produce "
            f"{item.image}",
            hint=f"the {item.source} provider's build must tag the image it is asked for",
        )


def _shown_arg(key: str, value: str) -> str:
    from stagecraft.config.show import REDACTED, looks_secret
    from stagecraft.redact import redact

    return REDACTED if looks_secret(key) else redact(value)


def _failure_line(output: str, *, prefer_error: bool) -> str:
    """``": <line>"``: the last line, or for a CLI the last error/fatal one (usage follows it)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    marked = [line for line in lines if line.lower().startswith(("error", "fatal"))]
    if not prefer_error:
        marked = []
    chosen = (marked or lines)[-1:]
    return f": {chosen[0]}" if chosen else ""


def _compose(loaded: LoadedConfig) -> ComposeProject:
    if loaded.compose is None:
        raise BuildError(
            f"{loaded.path}: no compose project loaded", hint="check the `compose:` key"
        )
    return loaded.compose


def _provider(kind: str, selection: ProviderSelection) -> Any:
    from stagecraft.providers.base import registry

    return registry(kind).create(selection.provider, selection.block())


def _provider_build(
    loaded: LoadedConfig,
    compose: ComposeProject,
    release: Release,
    source: str,
    selection: ProviderSelection,
) -> ImageBuild:
    """The build of the backend or frontend provider's service."""
    provider = _provider(source, selection)
    service = str(provider.service)
    tag = release.image_for(service)
    spec = provider.build(BuildRequest(root=loaded.root, image=tag))
    kind: BuildSource = "backend" if source == "backend" else "frontend"
    if isinstance(spec, ComposeBuild):
        return _compose_build(compose, spec.service, tag, kind, service=service)
    if isinstance(spec, DockerBuild):
        return ImageBuild(
            service=service,
            image=tag,
            source=kind,
            context=spec.context,
            dockerfile=_dockerfile(spec.context, spec.dockerfile),
            args=dict(spec.args),
            target=spec.target,
        )
    if isinstance(spec, BuildCommand):
        return ImageBuild(
            service=service,
            image=spec.image,
            source=kind,
            argv=tuple(spec.argv),
            cwd=spec.cwd,
            env=dict(spec.env),
        )
    raise BuildError(f"the {source} provider {selection.provider!r} returned no build plan")


def _compose_build(
    compose: ComposeProject,
    name: str,
    tag: str,
    source: BuildSource,
    *,
    service: str | None = None,
) -> ImageBuild:
    """A ``docker build`` from compose service ``name``'s ``build:`` section."""
    build = compose.service(name).build
    if build is None:
        raise BuildError(
            f"{compose.display_name}: service {name} has no build: section to build from",
            hint=f"add build: to service {name}, or configure a Dockerfile in the provider",
        )
    context = Path(build.context)
    return ImageBuild(
        service=service or name,
        image=tag,
        source=source,
        context=context,
        dockerfile=_dockerfile(context, Path(build.dockerfile) if build.dockerfile else None),
        args=dict(build.args),
        target=build.target,
    )


def _dockerfile(context: Path, dockerfile: Path | None) -> Path | None:
    """``dockerfile`` made absolute (docker resolves a relative -f against the cwd)."""
    if dockerfile is None:
        return None
    return dockerfile if dockerfile.is_absolute() else context / dockerfile


def _has_buildx(env: Mapping[str, str]) -> bool:
    """Whether ``docker buildx`` is installed (BuildKit needs it with newer clients)."""
    result = process.run(["docker", "buildx", "version"], env=env, check=False, timeout=30)
    return result.ok

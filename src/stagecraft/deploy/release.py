"""Release identity: the version (git short sha, ``-dirty``), release ids and image tags.

Names follow docs/adr/0005-deploy-design.md section 1.

Example::

    from pathlib import Path
    from stagecraft.deploy.release import new_release, resolve_version

    version = resolve_version(Path("."), explicit=None)   # git: "3f2a9c1b0d4e" or "...-dirty"
    release = new_release(loaded.config, "production", version)
    release.id                      # "20261123T101500Z-3f2a9c1b0d4e"
    release.image_for("web")        # "fleet/web:3f2a9c1b0d4e" (or "<registry>/web:...")
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from stagecraft.config.models import StagecraftConfig
from stagecraft.errors import ExitCode, PrerequisiteMissing, StagecraftError, UsageError
from stagecraft.runtime import process

VERSION_LENGTH = 12
"""Characters of the commit sha in a version (ADR 0005)."""
DIRTY_SUFFIX = "-dirty"
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_RELEASE = re.compile(r"^(?P<time>\d{8}T\d{6}Z)-(?P<version>[A-Za-z0-9_][A-Za-z0-9_.-]*)$")


class ReleaseError(StagecraftError):
    """The version or release cannot be determined (no git, bad --version)."""

    exit_code = ExitCode.USAGE


class DirtyTreeError(StagecraftError):
    """Deploying a version built from uncommitted changes without ``--allow-dirty``."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class Version:
    """A release version: ``value`` is the image tag; ``dirty`` marks uncommitted changes."""

    value: str
    dirty: bool = False
    source: Literal["git", "flag"] = "git"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Release:
    """One release of a project to an environment: its id, version and image names."""

    id: str
    version: Version
    project: str
    env: str | None
    repository: str

    def image_for(self, service: str) -> str:
        """The release image tag of a built ``service``."""
        return f"{self.repository}/{service}:{self.version.value}"


def resolve_version(root: Path, explicit: str | None = None) -> Version:
    """``explicit`` (from ``--version``) when given, else the version of ``root``'s git tree."""
    if explicit is not None:
        return explicit_version(explicit)
    return git_version(root)


def explicit_version(value: str) -> Version:
    """A version given on the command line; ReleaseError unless it is a valid image tag."""
    if not _TAG.fullmatch(value):
        raise ReleaseError(
            f"--version {value!r} is not a valid image tag",
            hint="use letters, digits, '_', '.' and '-' (at most 128, not starting with . or -)",
        )
    return Version(value, dirty=value.endswith(DIRTY_SUFFIX), source="flag")


def git_version(root: Path) -> Version:
    """HEAD's short sha (12 chars) of the git tree holding ``root``, ``-dirty`` if changed."""
    hint = "commit the project to git, or pass --version VERSION"
    try:
        head = process.run(
            ["git", "rev-parse", f"--short={VERSION_LENGTH}", "HEAD"],
            cwd=root,
            check=False,
            timeout=30,
        )
    except PrerequisiteMissing:
        raise ReleaseError("git is not installed: cannot derive the version", hint=hint) from None
    if not head.ok:
        reason = head.stderr.strip().splitlines()[-1:] or ["no commit"]
        raise ReleaseError(
            f"{root}: no git commit to take the version from ({reason[0]})", hint=hint
        )
    sha = head.stdout.strip()
    status = process.run(
        ["git", "status", "--porcelain", "--untracked-files=normal", "--", "."],
        cwd=root,
        timeout=60,
    )
    dirty = bool(status.stdout.strip())
    return Version(sha + DIRTY_SUFFIX if dirty else sha, dirty=dirty, source="git")


def check_dirty(version: Version, *, env: str, allow_dirty: bool) -> None:
    """Raise :class:`DirtyTreeError` when deploying a dirty version to ``env`` unallowed."""
    if version.dirty and not allow_dirty:
        raise DirtyTreeError(
            f"version {version.value} has uncommitted changes: not deploying it to {env}",
            hint="commit your changes, or pass --allow-dirty to deploy them anyway",
        )


def image_repository(config: StagecraftConfig, env: str | None) -> str:
    """Image prefix: the environment's ``images.registry``, ``project.registry``, or the name."""
    if env is not None and env in config.environments:
        registry = config.environments[env].images.registry
        if registry:
            return registry
    return config.project.registry or config.project.name


def release_id(version: Version, now: datetime | None = None) -> str:
    """``<UTC yyyymmddTHHMMSSZ>-<version>``: sortable by time."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{version.value}"


def parse_release_id(value: str) -> tuple[datetime, str]:
    """``(time, version)`` of a release id; UsageError if it is not one."""
    match = _RELEASE.fullmatch(value)
    if match is None:
        raise UsageError(
            f"{value!r} is not a release id",
            hint="release ids look like 20261123T101500Z-3f2a9c1b0d4e (see `stagecraft releases`)",
        )
    when = datetime.strptime(match["time"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return when, match["version"]


def new_release(
    config: StagecraftConfig, env: str | None, version: Version, now: datetime | None = None
) -> Release:
    """A new release of ``config``'s project to ``env`` at ``now`` (default: the current time)."""
    return Release(
        id=release_id(version, now),
        version=version,
        project=config.project.name,
        env=env,
        repository=image_repository(config, env),
    )

"""Look at a project directory and guess its ``stagecraft.yml``.

Detection only reads files (and runs ``docker compose config``); it never
writes. The result is a plain :class:`~stagecraft.init.model.Detection` value.
"""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from stagecraft import log
from stagecraft.compose.model import COMPOSE_FILENAMES, discover_compose_file
from stagecraft.errors import UsageError
from stagecraft.init.compose import (
    SOURCE_DOCKER,
    ComposeView,
    ServiceInfo,
    read_compose,
    relative_path,
)
from stagecraft.init.model import (
    BackendGuess,
    DatabaseGuess,
    Detection,
    FrontendGuess,
    normalise_project_name,
)

logger = logging.getLogger(__name__)

VITE_DEFAULT_PORT = 5173
ENCORE_DEFAULT_PORT = 4000
MIGRATION_DIRS = ("migrations", "db/migrations", "sql/migrations")
BACKEND_NAMES = ("api", "backend", "server", "app", "service")
"""Preferred compose service names for the backend, best first."""
FRONTEND_NAMES = ("web", "frontend", "app", "client", "ui", "site")
SKIPPED_DIRS = {"node_modules", "vendor", "dist", "build", "target", "__pycache__"}
LOCKFILES = (
    ("pnpm-lock.yaml", "pnpm"),
    ("yarn.lock", "yarn"),
    ("bun.lock", "bun"),
    ("bun.lockb", "bun"),
)
POSTGRES_IMAGES = ("postgres", "postgis", "timescaledb")


class NoComposeFileError(UsageError):
    """``init`` found no compose file to build the configuration on."""


@dataclass(frozen=True)
class PackageJson:
    """One package.json: where it is and what ``init`` reads from it."""

    workdir: str
    scripts: Mapping[str, str]
    dependencies: frozenset[str]
    manager: str

    @property
    def uses_vite(self) -> bool:
        return "vite" in self.dependencies


def detect(root: Path) -> Detection:
    """Detect the compose file, services, frontend, backend, database and dev infra of ``root``.

    Example::

        from pathlib import Path
        from stagecraft.init import detect, render

        detection = detect(Path("."))
        print(render(detection.defaults()))

    Raises :class:`NoComposeFileError` when ``root`` has no compose file, and
    :class:`~stagecraft.compose.model.ComposeError` when Compose rejects it.
    """
    root = root.resolve()
    compose_file = discover_compose_file(root)
    if compose_file is None:
        raise NoComposeFileError(
            f"no compose file in {root} (looked for {', '.join(COMPOSE_FILENAMES)})",
            hint="Stagecraft runs Docker Compose projects: add a compose.yaml, or run "
            "`stagecraft init` in the directory that has one",
        )
    compose = read_compose(root, compose_file)
    notes: list[str] = []
    if compose.source != SOURCE_DOCKER:
        notes.append(
            f"docker compose is not available: read the services of {compose.file} as plain "
            "YAML (extends, include and profiles are not resolved)"
        )
    packages = find_packages(root, notes)
    frontend = guess_frontend(packages, compose, notes)
    backend = guess_backend(root, packages, compose, frontend, notes)
    database = guess_database(root, compose, backend)
    infra = tuple(s.name for s in compose.services if s.infra_kind is not None)
    detection = Detection(
        root=root,
        project=normalise_project_name(root.name),
        compose=compose,
        frontend=frontend,
        backend=backend,
        database=database,
        infra=infra,
        notes=tuple(notes),
    )
    if logger.isEnabledFor(logging.DEBUG):
        log.event(logger, logging.DEBUG, f"detected {detection.to_dict()}", phase="init")
    return detection


def find_packages(root: Path, notes: list[str]) -> list[PackageJson]:
    """package.json files in ``root`` and one level down, root first, then by directory name."""
    candidates = [root / "package.json"]
    for child in sorted(root.iterdir()):
        if child.is_dir() and not child.name.startswith(".") and child.name not in SKIPPED_DIRS:
            candidates.append(child / "package.json")
    packages = []
    for path in candidates:
        if path.is_file():
            package = read_package(root, path, notes)
            if package is not None:
                packages.append(package)
    return packages


def read_package(root: Path, path: Path, notes: list[str]) -> PackageJson | None:
    """Parse one package.json; a broken one becomes a note, not an error."""
    workdir = relative_path(path.parent, root)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        notes.append(f"skipped {relative_path(path, root)}: not valid JSON ({exc})")
        return None
    if not isinstance(data, dict):
        notes.append(f"skipped {relative_path(path, root)}: not a JSON object")
        return None
    scripts = data.get("scripts")
    deps: set[str] = set()
    for key in ("dependencies", "devDependencies"):
        section = data.get(key)
        if isinstance(section, dict):
            deps.update(str(name) for name in section)
    return PackageJson(
        workdir=workdir,
        scripts={str(k): str(v) for k, v in scripts.items()} if isinstance(scripts, dict) else {},
        dependencies=frozenset(deps),
        manager=_package_manager(root, path.parent),
    )


def guess_frontend(
    packages: list[PackageJson], compose: ComposeView, notes: list[str]
) -> FrontendGuess | None:
    """The Vite app: one built by a compose service first, then by a conventional name."""
    vite = [p for p in packages if p.uses_vite]
    if not vite:
        return None

    def rank(package: PackageJson) -> tuple[int, int, str]:
        built = _service_building(compose, package.workdir) is not None
        name = package.workdir.rsplit("/", 1)[-1]
        named = FRONTEND_NAMES.index(name) if name in FRONTEND_NAMES else len(FRONTEND_NAMES)
        return (0 if built else 1, named, package.workdir)

    vite.sort(key=rank)
    chosen = vite[0]
    for other in vite[1:]:
        notes.append(f"vite is also used in {other.workdir}/ (not configured; edit frontend)")
    service = _service_building(compose, chosen.workdir)
    return FrontendGuess(
        workdir=chosen.workdir,
        port=_script_port(chosen.scripts.get("dev", "")) or VITE_DEFAULT_PORT,
        service=service.name if service else None,
        package_manager=chosen.manager,
    )


def guess_backend(
    root: Path,
    packages: list[PackageJson],
    compose: ComposeView,
    frontend: FrontendGuess | None,
    notes: list[str],
) -> BackendGuess | None:
    """Encore.ts when ``encore.app`` exists, else a generic backend for a built compose service."""
    encore_dir = _find_encore_app(root)
    if encore_dir is not None:
        return _encore_backend(encore_dir, compose, frontend)
    taken = {frontend.service} if frontend and frontend.service else set()
    built = [
        s
        for s in compose.services
        if s.build_context is not None
        and s.name not in taken
        and s.infra_kind is None
        and not (frontend and s.build_context == frontend.workdir)
    ]
    if not built:
        return None
    built.sort(key=lambda s: (_name_rank(s.name, BACKEND_NAMES), s.name))
    service = built[0]
    if len(built) > 1:
        others = ", ".join(s.name for s in built[1:])
        notes.append(f"also built by compose: {others} (deployed as compose services only)")
    workdir = service.build_context or "."
    package = next((p for p in packages if p.workdir == workdir), None)
    if package is None and (root / workdir / "package.json").is_file():
        package = read_package(root, root / workdir / "package.json", notes)
    command = _dev_command(package) if package else None
    return BackendGuess(
        provider="generic",
        workdir=workdir,
        service=service.name,
        command=command,
        port=service.port,
        reason=f"compose service {service.name} has a build",
    )


def guess_database(
    root: Path, compose: ComposeView, backend: BackendGuess | None
) -> DatabaseGuess | None:
    """``databases.main`` when a migrations directory with ``.sql`` files exists."""
    candidates = list(MIGRATION_DIRS)
    if backend and backend.workdir and backend.workdir != ".":
        candidates += [f"{backend.workdir}/{d}" for d in MIGRATION_DIRS]
    migrations = next((d for d in candidates if _has_sql(root / d)), None)
    if migrations is None:
        return None
    postgres = next((s for s in compose.services if _is_postgres(s)), None)
    return DatabaseGuess(migrations=migrations, service=postgres.name if postgres else None)


def _encore_backend(
    encore_dir: str, compose: ComposeView, frontend: FrontendGuess | None
) -> BackendGuess:
    service = _service_building(compose, encore_dir)
    if service is None:
        taken = {frontend.service} if frontend and frontend.service else set()
        named = [
            s
            for s in compose.services
            if s.name in BACKEND_NAMES and s.name not in taken and s.infra_kind is None
        ]
        named.sort(key=lambda s: _name_rank(s.name, BACKEND_NAMES))
        service = named[0] if named else None
    return BackendGuess(
        provider="encore-ts",
        workdir=encore_dir,
        service=service.name if service else None,
        command=None,
        port=ENCORE_DEFAULT_PORT,
        reason="encore.app",
    )


def _find_encore_app(root: Path) -> str | None:
    if (root / "encore.app").is_file():
        return "."
    for child in sorted(root.iterdir()):
        if child.is_dir() and not child.name.startswith(".") and (child / "encore.app").is_file():
            return child.name
    return None


def _service_building(compose: ComposeView, workdir: str) -> ServiceInfo | None:
    return next((s for s in compose.services if s.build_context == workdir), None)


def _dev_command(package: PackageJson) -> tuple[str, ...] | None:
    """``npm run dev`` (or start) with the project's package manager, if such a script exists."""
    for script in ("dev", "start"):
        if script in package.scripts:
            return (package.manager, "run", script)
    return None


def _script_port(script: str) -> int | None:
    """The ``--port N`` of a script line, if any."""
    try:
        words = shlex.split(script)
    except ValueError:
        return None
    for i, word in enumerate(words):
        value = None
        if word == "--port" and i + 1 < len(words):
            value = words[i + 1]
        elif word.startswith("--port="):
            value = word.split("=", 1)[1]
        if value is not None and value.isdigit() and 0 < int(value) < 65536:
            return int(value)
    return None


def _package_manager(root: Path, directory: Path) -> str:
    """npm unless a pnpm, yarn or bun lockfile sits next to package.json or at the root."""
    for place in (directory, root):
        for lockfile, manager in LOCKFILES:
            if (place / lockfile).is_file():
                return manager
    return "npm"


def _has_sql(directory: Path) -> bool:
    return directory.is_dir() and any(p.is_file() for p in directory.glob("*.sql"))


def _is_postgres(service: ServiceInfo) -> bool:
    image = (service.image or "").lower()
    return any(name in image for name in POSTGRES_IMAGES)


def _name_rank(name: str, preferred: tuple[str, ...]) -> int:
    return preferred.index(name) if name in preferred else len(preferred)

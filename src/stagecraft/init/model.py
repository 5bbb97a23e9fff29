"""Plain values of ``init``: what was detected, and what the user chose to write."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from stagecraft.init.compose import ComposeView, ServiceInfo

DEFAULT_URL_ENV = "DATABASE_URL"
MAIL_UI_PORT = 8025
"""The web UI port of mailpit and mailhog."""
MAIL_UI_IMAGES = ("mailpit", "mailhog")


@dataclass(frozen=True)
class FrontendGuess:
    """A Vite app found through its package.json."""

    workdir: str
    port: int
    service: str | None = None
    package_manager: str = "npm"
    provider: str = "vite"

    def describe(self) -> str:
        where = f"compose service {self.service}" if self.service else "no compose service"
        return f"{self.provider} in {_dir(self.workdir)} ({where}, port {self.port})"


@dataclass(frozen=True)
class BackendGuess:
    """The backend: Encore.ts (``encore.app``) or a generic dev command for a built service."""

    provider: str
    workdir: str | None
    service: str | None
    command: tuple[str, ...] | None
    port: int | None
    reason: str

    def describe(self) -> str:
        service = f"compose service {self.service}" if self.service else "no compose service"
        if self.provider != "generic":
            where = f" in {_dir(self.workdir)}" if self.workdir else ""
            return f"{self.provider} ({self.reason}{where}), {service}, port {self.port}"
        if self.command is None:
            return f"generic, {service}, dev command unknown (fill it in)"
        port = f", port {self.port}" if self.port else ", port unknown"
        return f"generic, {service}, `{' '.join(self.command)}` in {_dir(self.workdir)}{port}"


@dataclass(frozen=True)
class DatabaseGuess:
    """``databases.main``: a migrations directory and the postgres-looking compose service."""

    migrations: str
    service: str | None
    name: str = "main"
    url_env: str = DEFAULT_URL_ENV

    def describe(self) -> str:
        where = f"compose service {self.service}" if self.service else "no postgres service"
        return f"{where}, migrations in {_dir(self.migrations)}, url in ${self.url_env}"


@dataclass(frozen=True)
class Route:
    """A dev route: ``<name>.<domain>`` -> ``backend`` | ``frontend`` | ``service:port``."""

    name: str
    target: str


@dataclass(frozen=True)
class Detection:
    """Everything ``init`` found in a project directory. Build one with :func:`detect`."""

    root: Path
    project: str
    compose: ComposeView
    frontend: FrontendGuess | None = None
    backend: BackendGuess | None = None
    database: DatabaseGuess | None = None
    infra: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def choose(
        self,
        *,
        project: str | None = None,
        frontend: bool = True,
        backend: bool = True,
        database: bool = True,
        infra: tuple[str, ...] | None = None,
    ) -> InitChoices:
        """What to write: the detected defaults, minus whatever the user declined."""
        kept_infra = self.infra if infra is None else tuple(s for s in self.infra if s in infra)
        fe = self.frontend if frontend else None
        be = self.backend if backend else None
        return InitChoices(
            project=project or self.project,
            compose_file=self.compose.file,
            services=self.compose.services,
            frontend=fe,
            backend=be,
            database=self.database if database else None,
            infra=kept_infra,
            routes=derive_routes(fe, be, kept_infra, self.compose),
        )

    def defaults(self) -> InitChoices:
        """Every detected choice accepted (``--yes``)."""
        return self.choose()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``--json``)."""
        return {
            "root": str(self.root),
            "project": self.project,
            "compose": {
                "file": self.compose.file,
                "source": self.compose.source,
                "services": [s.name for s in self.compose.services],
            },
            "frontend": asdict(self.frontend) if self.frontend else None,
            "backend": asdict(self.backend) if self.backend else None,
            "database": asdict(self.database) if self.database else None,
            "infra": list(self.infra),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class InitChoices:
    """The content of the ``stagecraft.yml`` to write; rendered by :func:`render`."""

    project: str
    compose_file: str
    services: tuple[ServiceInfo, ...] = ()
    frontend: FrontendGuess | None = None
    backend: BackendGuess | None = None
    database: DatabaseGuess | None = None
    infra: tuple[str, ...] = ()
    routes: tuple[Route, ...] = field(default=())

    @property
    def domain(self) -> str:
        """The dev domain: the project name made hostname-safe, under ``.localhost``."""
        return f"{self.project.replace('_', '-')}.localhost"

    def with_project(self, project: str) -> InitChoices:
        """The same choices under another project name."""
        return replace(self, project=project)


def derive_routes(
    frontend: FrontendGuess | None,
    backend: BackendGuess | None,
    infra: tuple[str, ...],
    compose: ComposeView,
) -> tuple[Route, ...]:
    """``app`` -> frontend, ``api`` -> backend (when written and runnable), ``mail`` -> its UI."""
    routes: list[Route] = []
    if frontend is not None and frontend_is_written(frontend):
        routes.append(Route("app", "frontend"))
    if backend is not None and backend_is_written(backend) and backend.port is not None:
        routes.append(Route("api", "backend"))
    mail = next((name for name in infra if _is_mail_ui(compose.service(name))), None)
    if mail is not None:
        routes.append(Route("mail", f"{mail}:{MAIL_UI_PORT}"))
    return tuple(routes)


def backend_is_written(backend: BackendGuess) -> bool:
    """Whether the backend section is active (not commented out): it has all required keys."""
    if backend.service is None:
        return False
    return backend.provider != "generic" or backend.command is not None


def frontend_is_written(frontend: FrontendGuess) -> bool:
    """Whether the frontend section is active: the vite provider needs a compose service."""
    return frontend.service is not None


def _is_mail_ui(service: ServiceInfo | None) -> bool:
    if service is None or not service.image:
        return False
    return any(name in service.image.lower() for name in MAIL_UI_IMAGES)


_UNSAFE = re.compile(r"[^a-z0-9_-]+")


def normalise_project_name(name: str) -> str:
    """A valid compose project name from a directory name (``My App!`` -> ``my-app``)."""
    text = _UNSAFE.sub("-", name.strip().lower())
    text = re.sub(r"-{2,}", "-", text)
    text = re.sub(r"^[^a-z0-9]+", "", text).rstrip("-_")
    return text or "app"


PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def is_valid_project_name(name: str) -> bool:
    """Whether ``name`` is a valid compose project name."""
    return bool(PROJECT_NAME.fullmatch(name))


def _dir(path: str | None) -> str:
    if not path or path == ".":
        return "the project root"
    return path.rstrip("/") + "/"

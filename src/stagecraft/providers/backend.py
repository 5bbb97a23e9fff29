"""Backend providers: the ``backend`` provider kind, and the dev-server and build contract.

A backend provider knows two things about the application's API server:

- how to run it on the laptop with hot reload (:meth:`BackendProvider.dev_process`
  returns a :class:`DevProcess`: argv, working directory, environment, port,
  how to tell it is ready, how to stop it). ``stagecraft dev`` supervises that
  process; the provider never starts anything itself.
- how to build its production image (:meth:`BackendProvider.build` returns a
  :class:`BuildPlan`: the compose service's own ``build:``, a Dockerfile build,
  or a command that produces the image, such as ``encore build docker``).

Both are pure: they compute a value from the provider's config and a context,
so ``--dry-run`` can print them and tests can compare them. The same value
types serve frontend providers (:mod:`stagecraft.providers.frontend`).

``service`` names the compose service that runs the backend once deployed.

A third-party backend (say, Rails) is a subclass registered under the
entry-point group ``stagecraft.providers.backend``::

    class RailsBackend(BackendProvider):
        \"\"\"Rails with bin/rails server.\"\"\"

        id = "rails"

        class Config(ProviderConfig):
            service: str
            port: int = 3000

        @property
        def service(self) -> str:
            return self.config.service

        def dev_process(self, ctx: DevContext) -> DevProcess:
            port = self.config.port
            return DevProcess(
                name="backend",
                argv=("bin/rails", "server", "-b", "127.0.0.1", "-p", str(port)),
                cwd=ctx.root,
                env={**ctx.env, "RAILS_ENV": "development"},
                port=port,
                readiness=Readiness(http_path="/up"),
            )

        def build(self, req: BuildRequest) -> BuildPlan:
            return ComposeBuild(service=self.service)

and in its ``pyproject.toml``::

    [project.entry-points."stagecraft.providers.backend"]
    rails = "stagecraft_rails:RailsBackend"
"""

from __future__ import annotations

import re
import signal
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from stagecraft.providers.base import Provider


@dataclass(frozen=True)
class Readiness:
    """How the supervisor tells a dev server is ready.

    ``http_path``: an HTTP GET on the process's port answers; ``log_pattern``: a
    line of its output matches this regular expression. Neither: ready once
    started. ``timeout`` is how long to wait before reporting it as failed.
    """

    http_path: str | None = None
    log_pattern: str | None = None
    timeout: float = 60.0

    def __post_init__(self) -> None:
        if self.http_path is not None and self.log_pattern is not None:
            raise ValueError("readiness is either an HTTP path or a log pattern, not both")
        if self.http_path is not None and not self.http_path.startswith("/"):
            raise ValueError(f"readiness http path {self.http_path!r} must start with '/'")
        if self.log_pattern is not None:
            re.compile(self.log_pattern)
        if self.timeout <= 0:
            raise ValueError("readiness timeout must be positive")

    @property
    def kind(self) -> str:
        """``"http"``, ``"log"`` or ``"none"``."""
        if self.http_path is not None:
            return "http"
        return "log" if self.log_pattern is not None else "none"


@dataclass(frozen=True)
class DevProcess:
    """A dev server to supervise: what to run, where, with which environment.

    ``env`` holds the variables to set *on top of* the inherited environment;
    it may carry secrets (from an env file), so it is left out of ``repr``.
    ``port`` is where the server listens on 127.0.0.1 (what the dev proxy
    routes to), or None if it has no port of its own.
    """

    name: str
    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    port: int | None = None
    readiness: Readiness = field(default_factory=Readiness)
    stop_signal: str = "SIGTERM"
    stop_timeout: float = 10.0

    def __post_init__(self) -> None:
        if not self.argv:
            raise ValueError(f"dev process {self.name!r} has an empty command")
        if self.port is not None and not 0 < self.port < 65536:
            raise ValueError(f"dev process {self.name!r}: port {self.port} is out of range")
        signal_number(self.stop_signal)

    @property
    def signal(self) -> signal.Signals:
        """``stop_signal`` as a :class:`signal.Signals` member."""
        return signal_number(self.stop_signal)


@dataclass(frozen=True)
class DevContext:
    """What ``stagecraft dev`` knows when it asks a provider for its dev process.

    ``root``: the project root (where ``stagecraft.yml`` is); relative paths in
    provider config are relative to it. ``public_url``: this server's URL
    through the dev proxy (``https://api.shop.localhost``); ``api_url``: the
    backend's public URL (useful to frontends). ``env``: variables the core
    sets for every dev server (``DATABASE_URL``, ...). ``ca_cert``: the dev CA's
    certificate, for runtimes that must trust the proxy's certificates.
    """

    project: str
    root: Path
    domain: str
    public_url: str | None = None
    api_url: str | None = None
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    ca_cert: Path | None = None


@dataclass(frozen=True)
class BuildRequest:
    """What the build phase asks for: the project root and the image reference to produce."""

    root: Path
    image: str


@dataclass(frozen=True)
class ComposeBuild:
    """Build with the compose service's own ``build:`` section (``docker compose build``)."""

    service: str


@dataclass(frozen=True)
class DockerBuild:
    """A ``docker build`` of ``context`` (absolute), tagged with the requested image."""

    context: Path
    dockerfile: Path | None = None
    args: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None


@dataclass(frozen=True)
class BuildCommand:
    """A command that builds and tags ``image`` itself (e.g. ``encore build docker``)."""

    argv: tuple[str, ...]
    cwd: Path
    image: str
    env: Mapping[str, str] = field(default_factory=dict)


BuildPlan = ComposeBuild | DockerBuild | BuildCommand
"""How one service's production image is built."""


class DevServerProvider(Provider, ABC):
    """What backend and frontend providers share: a dev server and a production image."""

    @property
    @abstractmethod
    def service(self) -> str:
        """The compose service that runs this part of the app when deployed."""

    @abstractmethod
    def dev_process(self, ctx: DevContext) -> DevProcess:
        """The dev server to run for ``stagecraft dev``."""

    @abstractmethod
    def build(self, req: BuildRequest) -> BuildPlan:
        """How to build the production image ``req.image``."""


class BackendProvider(DevServerProvider):
    """Base class of backend providers (provider kind ``backend``)."""

    kind: ClassVar[str] = "backend"


def signal_number(name: str) -> signal.Signals:
    """The signal called ``name`` (``SIGTERM``, ``TERM`` or ``15``); ValueError if unknown."""
    text = name.strip().upper()
    if text.isdigit():
        return signal.Signals(int(text))
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return signal.Signals[text]
    except KeyError:
        raise ValueError(f"unknown signal {name!r}") from None

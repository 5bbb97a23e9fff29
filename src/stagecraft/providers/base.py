"""Provider base class and the entry-point registries.

A provider is a class with a stable ``id``, a ``kind``, a pydantic ``Config``
model that validates its own block of ``stagecraft.yml``, and a docstring with
a usage example (the docstring is the reference documentation).

A third-party package registers one in its ``pyproject.toml``::

    [project.entry-points."stagecraft.providers.backend"]
    rails = "stagecraft_rails:RailsBackend"

and ``stagecraft doctor`` lists it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, ClassVar, Generic, TypeVar, cast

from pydantic import BaseModel, ConfigDict

from stagecraft.errors import ProviderError

KINDS: tuple[str, ...] = (
    "backend",
    "frontend",
    "migration",
    "proxy",
    "network",
    "cloud",
    "ci",
    "secrets",
)

GROUP_PREFIX = "stagecraft.providers."


class ProviderConfig(BaseModel):
    """Base for provider config models: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Provider:
    """Base class of every provider.

    Subclasses set ``id``, ``kind`` and ``Config``; instances are built with a
    validated config: ``SomeProvider(SomeProvider.Config.model_validate(raw))``.
    """

    id: ClassVar[str]
    kind: ClassVar[str]
    Config: ClassVar[type[ProviderConfig]] = ProviderConfig

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config

    @classmethod
    def summary(cls) -> str:
        """First line of the class docstring."""
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


P = TypeVar("P", bound=Provider)


@dataclass(frozen=True)
class ProviderInfo:
    """What ``doctor`` shows about one registered provider."""

    kind: str
    id: str
    origin: str
    summary: str


class Registry(Generic[P]):
    """The providers of one kind, loaded lazily from entry points."""

    def __init__(self, kind: str, eps: Iterable[EntryPoint] | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown provider kind {kind!r}")
        self.kind = kind
        self._eps = list(eps) if eps is not None else None
        self._loaded: dict[str, type[P]] | None = None
        self._origins: dict[str, str] = {}

    def _entry_points(self) -> list[EntryPoint]:
        if self._eps is None:
            self._eps = list(entry_points(group=GROUP_PREFIX + self.kind))
        return self._eps

    def _load(self) -> dict[str, type[P]]:
        if self._loaded is not None:
            return self._loaded
        loaded: dict[str, type[P]] = {}
        for ep in sorted(self._entry_points(), key=lambda e: (e.name, e.value)):
            origin = ep.dist.name if ep.dist is not None else ep.value.split(":")[0]
            if ep.name in loaded:
                raise ProviderError(
                    f"{self.kind} provider {ep.name!r} is registered twice "
                    f"(by {self._origins[ep.name]} and {origin})",
                    hint="uninstall one of the packages",
                )
            try:
                cls = ep.load()
            except Exception as exc:  # a broken third-party plugin must not crash us
                raise ProviderError(
                    f"{self.kind} provider {ep.name!r} from {origin} failed to load: {exc}",
                    hint=f"reinstall or remove the package providing {ep.value}",
                ) from exc
            if not (isinstance(cls, type) and issubclass(cls, Provider)):
                raise ProviderError(
                    f"{self.kind} provider {ep.name!r} ({ep.value}) is not a Provider subclass"
                )
            if getattr(cls, "id", ep.name) != ep.name or getattr(cls, "kind", None) != self.kind:
                raise ProviderError(
                    f"entry point {ep.name!r} in group {GROUP_PREFIX + self.kind} points at "
                    f"{ep.value}, whose id/kind is {getattr(cls, 'id', '?')!r}/"
                    f"{getattr(cls, 'kind', '?')!r}"
                )
            loaded[ep.name] = cast("type[P]", cls)
            self._origins[ep.name] = origin
        self._loaded = loaded
        return loaded

    def ids(self) -> list[str]:
        """Known provider ids of this kind, sorted."""
        return sorted(self._load())

    def get(self, provider_id: str) -> type[P]:
        """The provider class for ``provider_id``; unknown ids list the known ones."""
        providers = self._load()
        try:
            return providers[provider_id]
        except KeyError:
            known = ", ".join(sorted(providers)) or "none installed"
            raise ProviderError(
                f"unknown {self.kind} provider {provider_id!r}; known: {known}"
            ) from None

    def create(self, provider_id: str, raw: Any) -> P:
        """Validate ``raw`` with the provider's own model and build the provider."""
        cls = self.get(provider_id)
        return cls(cls.Config.model_validate(raw or {}))

    def infos(self) -> list[ProviderInfo]:
        """One entry per provider, for ``doctor``."""
        providers = self._load()
        return [
            ProviderInfo(self.kind, pid, self._origins.get(pid, "?"), providers[pid].summary())
            for pid in sorted(providers)
        ]


_REGISTRIES: dict[str, Registry[Any]] = {}


def registry(kind: str) -> Registry[Any]:
    """The process-wide registry for ``kind``."""
    if kind not in _REGISTRIES:
        _REGISTRIES[kind] = Registry(kind)
    return _REGISTRIES[kind]


def reset_registries() -> None:
    """Forget loaded providers (tests that install plugins use this)."""
    _REGISTRIES.clear()

"""``stagecraft ci init``: write the CI workflow the selected CI provider renders.

The provider (``ci: {provider: github}``, the default) turns the project's
environments and the names of their secrets into a workflow that tests, builds and
deploys; this module only decides where it goes and writes it without clobbering.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stagecraft.config.loader import LoadedConfig
from stagecraft.errors import UsageError
from stagecraft.files import atomic_write_text
from stagecraft.providers import registry
from stagecraft.providers.ci import CiEnvironment, CIProvider


@dataclass(frozen=True)
class Workflow:
    """A rendered workflow and where it belongs."""

    provider: str
    path: Path
    text: str


def render_workflow(loaded: LoadedConfig) -> Workflow:
    """The workflow for every environment, placed relative to the repository root."""
    selection = loaded.config.ci
    provider_id = selection.provider if selection is not None else "github"
    provider = registry("ci").create(provider_id, selection.block() if selection else {})
    assert isinstance(provider, CIProvider)
    environments = [
        CiEnvironment(name, tuple(env.secrets))
        for name, env in sorted((loaded.config.environments or {}).items())
    ]
    text = provider.render_workflow(loaded.config.project.name, environments)
    return Workflow(provider_id, repository_root(loaded.root) / provider.workflow_path, text)


def repository_root(start: Path) -> Path:
    """The nearest directory at or above ``start`` that holds ``.git``, else ``start``."""
    for directory in (start, *start.parents):
        if (directory / ".git").exists():
            return directory
    return start


def write_workflow(workflow: Workflow, *, force: bool = False) -> bool:
    """Write ``workflow``; False when the same text is already there.

    An existing, different file needs ``force`` (a :class:`UsageError` otherwise).
    """
    path = workflow.path
    if path.exists():
        if path.read_text(encoding="utf-8") == workflow.text:
            return False
        if not force:
            raise UsageError(
                f"{path} already exists and differs; not overwriting it",
                hint="pass --force to replace it (or --dry-run to see the new one)",
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, workflow.text)
    return True

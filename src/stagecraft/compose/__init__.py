"""The compose model: what ``docker compose config`` says the project contains.

Stagecraft never parses compose files itself; see :mod:`stagecraft.compose.model`.
"""

from stagecraft.compose.extension import XHealthcheck, XStagecraft
from stagecraft.compose.model import (
    COMPOSE_FILENAMES,
    ComposeBuild,
    ComposeDependency,
    ComposeError,
    ComposeHealthcheck,
    ComposePort,
    ComposeProject,
    ComposeService,
    ComposeVolume,
    discover_compose_file,
    load_compose,
)

__all__ = [
    "COMPOSE_FILENAMES",
    "ComposeBuild",
    "ComposeDependency",
    "ComposeError",
    "ComposeHealthcheck",
    "ComposePort",
    "ComposeProject",
    "ComposeService",
    "ComposeVolume",
    "XHealthcheck",
    "XStagecraft",
    "discover_compose_file",
    "load_compose",
]

"""Configuration: ``stagecraft.yml`` models, loading, validation, schema and redacted view.

The names below are imported lazily so that ``import stagecraft.config`` stays
cheap (``stagecraft --help`` must start fast); import from the submodules or
from here, e.g. ``from stagecraft.config import load_project``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stagecraft.config.loader import LoadedConfig, load_config, load_project
    from stagecraft.config.locate import find_config
    from stagecraft.config.models import EnvironmentConfig, StagecraftConfig

_EXPORTS = {
    "LoadedConfig": "stagecraft.config.loader",
    "find_config": "stagecraft.config.locate",
    "load_config": "stagecraft.config.loader",
    "load_project": "stagecraft.config.loader",
    "EnvironmentConfig": "stagecraft.config.models",
    "StagecraftConfig": "stagecraft.config.models",
}

__all__ = [
    "EnvironmentConfig",
    "LoadedConfig",
    "StagecraftConfig",
    "find_config",
    "load_config",
    "load_project",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'stagecraft.config' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

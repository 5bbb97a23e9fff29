"""Helpers for the provider tests: plain-data conversion and a YAML snapshot extension."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from stagecraft.providers.secrets import SecretValue


class YamlSnapshot(SingleFileSnapshotExtension):
    """A golden file holding YAML text as it is written."""

    _write_mode = WriteMode.TEXT
    file_extension = "yml"


def plain(value: Any, root: PurePath | None = None) -> Any:
    """Dataclasses, paths, mappings and tuples as JSON-friendly data (secrets stay masked).

    Paths under ``root`` are written as ``<root>/...`` so goldens do not depend on
    where the repository is checked out.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name), root) for f in dataclasses.fields(value)}
    if isinstance(value, SecretValue):
        return repr(value)
    if isinstance(value, PurePath):
        if root is not None and value.is_relative_to(root):
            return PurePath("<root>", value.relative_to(root)).as_posix()
        return value.as_posix()
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, Mapping):
        return {str(k): plain(v, root) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, root) for v in value]
    return value

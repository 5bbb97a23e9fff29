"""Shared helpers of the model tests (render, plan): the fleet example loaded reproducibly."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from stagecraft.config.loader import LoadedConfig, load_project
from stagecraft.deploy.release import Release, Version, new_release

FLEET = Path(__file__).resolve().parents[3] / "examples" / "fleet"
FIXED_TIME = datetime(2026, 11, 23, 10, 15, 0, tzinfo=UTC)
# Variables the fleet example reads: unset so the public defaults are rendered.
_EXAMPLE_VARS = ("FLEET_", "BUSYBOX_IMAGE", "POSTGRES_IMAGE", "POSTGRES_PASSWORD", "DATABASE_URL")


class YamlGolden(SingleFileSnapshotExtension):
    """One readable ``.yml`` golden file per snapshot."""

    _write_mode = WriteMode.TEXT
    file_extension = "yml"


class TextGolden(SingleFileSnapshotExtension):
    """One ``.txt`` golden file per snapshot."""

    _write_mode = WriteMode.TEXT
    file_extension = "txt"


def example_environ(**extra: str) -> dict[str, str]:
    """The process environment without the example's variables, plus ``extra``."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(_EXAMPLE_VARS)}
    environ.update(extra)
    return environ


def load_fleet(**extra: str) -> LoadedConfig:
    """The fleet example with its defaults (and ``extra`` variables)."""
    return load_project(FLEET / "stagecraft.yml", environ=example_environ(**extra))


def fleet_release(loaded: LoadedConfig, version: str = "0123456789ab") -> Release:
    """A release of the fleet example at a fixed time."""
    return new_release(loaded.config, "production", Version(version), FIXED_TIME)


# --- driver: swarm -------------------------------------------------------------

KEY = bytes(range(32))
VALUES = {
    "POSTGRES_PASSWORD": "fleet-password",
    "DATABASE_URL": "postgres://fleet:fleet-password@db/fleet",
}
Edit = tuple[str, str]


def _edit(path: Path, edits: Iterable[Edit]) -> None:
    text = path.read_text()
    for old, new in edits:
        assert old in text, f"{old!r} not in {path.name}"
        text = text.replace(old, new, 1)
    path.write_text(text)


def swarm_fleet(
    tmp_path: Path, *, config: Iterable[Edit] = (), compose: Iterable[Edit] = ()
) -> LoadedConfig:
    """The fleet example as a ``driver: swarm`` environment, with ``config``/``compose`` edits."""
    root = tmp_path / "fleet"
    shutil.copytree(FLEET, root)
    _edit(root / "stagecraft.yml", [("  production:\n", "  production:\n    driver: swarm\n")])
    _edit(root / "stagecraft.yml", config)
    _edit(root / "docker-compose.yml", compose)
    return load_project(root / "stagecraft.yml", environ=example_environ())

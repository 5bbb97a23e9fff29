"""Shared helpers for the ``stagecraft init`` unit tests."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

LAYOUTS = Path(__file__).resolve().parents[2] / "fixtures" / "layouts"
LAYOUT_NAMES = ("node-vite-postgres", "encore-app", "plain-compose")
IMAGE_VARS = ("POSTGRES_IMAGE", "MAILPIT_IMAGE", "REDIS_IMAGE", "API_IMAGE")


@pytest.fixture(autouse=True)
def _public_image_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Detection sees the layouts' public image defaults, whatever this machine exports."""
    for name in IMAGE_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def copy_layout(tmp_path: Path) -> Callable[..., Path]:
    """Copy a sample layout into a fresh directory (named ``as_name`` or after the layout)."""

    def copy(name: str, as_name: str | None = None) -> Path:
        target = tmp_path / (as_name or name)
        shutil.copytree(LAYOUTS / name, target)
        return target

    return copy


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """Create a project directory from ``files`` (relative path -> text)."""

    def make(files: dict[str, str], name: str = "proj") -> Path:
        root = tmp_path / name
        for relative, text in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        root.mkdir(exist_ok=True)
        return root

    return make

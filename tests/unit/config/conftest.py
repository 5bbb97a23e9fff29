"""Fixtures of the config tests: fake providers, the reference example, a writer for configs."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from config_fakes import fake_providers

REFERENCE = Path(__file__).parent / "reference"


@pytest.fixture
def fakes() -> Iterator[None]:
    """The provider registries hold the fakes of ``config_fakes`` for this test."""
    with fake_providers():
        yield


@pytest.fixture
def reference(tmp_path: Path) -> Path:
    """A copy of the SPEC 3.1 reference project (stagecraft.yml + docker-compose.yml)."""
    target = tmp_path / "shop"
    shutil.copytree(REFERENCE, target)
    return target


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    """Write a stagecraft.yml with the given text; returns its path."""

    def write(text: str) -> Path:
        path = tmp_path / "stagecraft.yml"
        path.write_text(text, encoding="utf-8")
        return path

    return write

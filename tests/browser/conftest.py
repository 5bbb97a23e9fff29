"""Fixtures of the browser tests: where screenshots go (see tests/browser/chromium.py)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: $STAGECRAFT_ARTIFACTS, else a temporary directory."""
    chosen = os.environ.get("STAGECRAFT_ARTIFACTS")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def screenshot(artifacts: Path) -> Callable[[Any, str], Path]:
    def take(driver: Any, name: str) -> Path:
        path = artifacts / f"{name}.png"
        driver.save_screenshot(str(path))
        return path

    return take

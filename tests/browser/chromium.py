"""Headless Chromium for the dashboard tests (Debian's chromium and chromium-driver, Selenium).

Helpers shared by tests/browser/ (fixtures are in conftest.py).

Tests that use :func:`browser` are skipped, with the reason, when chromium,
chromedriver or selenium is missing (scripts/setup.sh installs them).
Screenshots go to ``$STAGECRAFT_ARTIFACTS`` (CI keeps that directory), else to
the test session's temporary directory.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)


def chromium_paths() -> tuple[str, str] | None:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (binary, driver) if binary and driver else None


def start_browser(tmp: Path, extra: tuple[str, ...] = ()) -> Any:
    """A fresh headless Chromium (its own profile) driven by Selenium; skips when missing."""
    paths = chromium_paths()
    if paths is None:
        pytest.skip("chromium and chromedriver are not installed (scripts/setup.sh installs them)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[dev]')")
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp}", *extra):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=paths[1]))
    driver.set_page_load_timeout(30)
    return driver


def wait_for(condition: Callable[[], Any], timeout: float, what: str, poll: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something truthy; AssertionError on time-out."""
    import time

    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception as exc:  # a page element replaced by a refresh: try again
            last = exc
            value = None
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last error: {last})")

"""pytest fixtures for Stagecraft's tests (and provider authors'), auto-loaded.

Markers (registered here):

- ``integration``: needs the real Docker engine, sshd, PostgreSQL or Caddy;
- ``sandbox``: needs root to create network-namespace sandbox hosts. Tests
  that use ``sandbox3`` or ``sandbox_factory`` get both markers automatically,
  so ``pytest -m "not sandbox"`` skips them.

Fixtures:

- ``sandbox3`` (session): a started 3-host :class:`~stagecraft.localhosts.sandbox.Sandbox`;
  skipped with the reason when this machine cannot run sandboxes (not root,
  no ``ip netns``). Tests must leave its hosts running (restart what they stop).
- ``sandbox_factory``: ``make(count)`` returns a new started sandbox, torn down
  after the test.
- ``busybox_image`` (session): the tag of the busybox test image on the local daemon.
- ``ssh_options_for``: ``ssh_options_for(sandbox)`` -> SSHOptions for its hosts.
"""

from __future__ import annotations

import shutil
import signal
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from stagecraft.localhosts.sandbox import start_sandbox

if TYPE_CHECKING:
    from stagecraft.localhosts.sandbox import Sandbox
    from stagecraft.runtime.ssh import SSHOptions

# Stagecraft modules are imported inside the fixtures: this plugin loads before
# pytest-cov starts measuring, and an import here would hide their coverage.

SANDBOX_FIXTURES = {"sandbox3", "sandbox_factory"}


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers this plugin's fixtures rely on; give Ctrl-C back to the tests.

    A suite started in the background of a script (``cmd &`` without job control)
    inherits SIGINT ignored, and so would every command a test starts: the tests
    of Ctrl-C handling would then test nothing. Python's own handler is put back
    (an ignored signal stays ignored across exec, a handled one becomes default).
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    config.addinivalue_line(
        "markers", "integration: needs the real Docker engine, sshd, PostgreSQL or Caddy"
    )
    config.addinivalue_line("markers", "sandbox: needs root to create network-namespace hosts")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests that use sandbox fixtures as ``sandbox`` and ``integration``."""
    for item in items:
        if SANDBOX_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.sandbox)
            item.add_marker(pytest.mark.integration)


_SESSION: dict[str, bool] = {}


def _require_sandbox() -> None:
    """Skip unless sandboxes work here; once per session, clean up crashed runs' leftovers."""
    from stagecraft.localhosts.sandbox import SandboxUnavailable, check_available, cleanup_stale

    try:
        check_available()
    except SandboxUnavailable as exc:
        pytest.skip(f"sandbox hosts unavailable: {exc.message}")
    if not _SESSION.get("stale_cleaned"):
        cleanup_stale()
        _SESSION["stale_cleaned"] = True


@pytest.fixture(scope="session")
def sandbox3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """Three sandbox hosts shared by the whole session."""
    _require_sandbox()
    sandbox = start_sandbox(3, tmp_path_factory.mktemp("sandbox3"), "sc")
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def sandbox_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[int], Sandbox]]:
    """``make(count)``: a new started sandbox, stopped after the test."""
    _require_sandbox()
    made: list[Sandbox] = []

    def make(count: int = 1) -> Sandbox:
        sandbox = start_sandbox(count, tmp_path_factory.mktemp("sandbox"), "sf")
        made.append(sandbox)
        return sandbox

    try:
        yield make
    finally:
        for sandbox in reversed(made):
            sandbox.stop()


@pytest.fixture(scope="session")
def busybox_image() -> str:
    """The busybox test image on the local daemon (built once)."""
    if shutil.which("docker") is None:
        pytest.skip("docker is not installed")
    from stagecraft.testing import images

    return images.ensure_busybox_image()


@pytest.fixture
def ssh_options_for() -> Callable[[Sandbox], SSHOptions]:
    """``ssh_options_for(sandbox)``: SSH options that reach that sandbox's hosts."""
    from stagecraft.localhosts.sandbox import ssh_options_for as options_for

    return options_for

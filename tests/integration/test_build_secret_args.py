"""A real ``docker build`` gets its build args from the environment, not from argv.

The build arg is a canary: the image must have received it, while neither the
argv that the process gateway logs at DEBUG (``--verbose``) nor any process's
``/proc/<pid>/cmdline`` during the build (what ``ps`` shows) contains it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stagecraft.deploy.build import BuildPlan, ImageBuild, execute_build
from stagecraft.deploy.release import Release, Version

pytestmark = pytest.mark.integration


class CmdlineWatch:
    """Scans every process's command line while a build runs, for a string."""

    def __init__(self, needle: str) -> None:
        self.needle = needle.encode()
        self.seen: list[str] = []
        self.scans = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> CmdlineWatch:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.is_set():
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    cmdline = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if self.needle in cmdline:
                    self.seen.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
            self.scans += 1


@pytest.fixture
def tag() -> Iterator[str]:
    name = f"stagecraft-test/buildargs-{uuid.uuid4().hex[:8]}:v1"
    yield name
    subprocess.run(["docker", "rmi", "-f", name], capture_output=True, check=False)


def test_build_arg_reaches_the_build_but_not_argv_or_logs(
    tmp_path: Path, busybox_image: str, tag: str, caplog: pytest.LogCaptureFixture
) -> None:
    canary = f"canary-{uuid.uuid4().hex} 'quoted' $HOME"
    (tmp_path / "Dockerfile").write_text(
        f"FROM {busybox_image}\n"
        "ARG SECRET_TOKEN\n"
        "ARG STAGECRAFT_VERSION\n"
        # Slow enough for the watcher to see the client's command line several times.
        'RUN sleep 1 && printf "%s" "$SECRET_TOKEN" > /token && echo "$STAGECRAFT_VERSION" > /v\n'
    )
    item = ImageBuild(
        "api", tag, "compose", tmp_path, tmp_path / "Dockerfile", args={"SECRET_TOKEN": canary}
    )
    release = Release("20261123T100000Z-aaa", Version("v1", dirty=True), "buildargs", None, "x")
    caplog.set_level(logging.DEBUG, logger="stagecraft")
    environ = {**os.environ, "DOCKER_BUILDKIT": "0"}  # the legacy builder, as on this machine
    with CmdlineWatch(canary) as watch:
        # The watcher's own check: a command line that does hold the canary is seen.
        subprocess.run(["sh", "-c", "sleep 0.5", "probe", canary], check=True)
        probe_seen = len(watch.seen)
        results = execute_build(BuildPlan(release, (item,)), environ=environ)
    assert [r.status for r in results] == ["built"]
    assert probe_seen > 0 and all(line.startswith("sh -c sleep 0.5 probe") for line in watch.seen)

    logged_argv = [r.getMessage() for r in caplog.records if r.getMessage().startswith("$ ")]
    build_line = next(line for line in logged_argv if line.startswith("$ docker build -t"))
    assert "--build-arg SECRET_TOKEN --build-arg STAGECRAFT_VERSION" in build_line
    assert all(canary not in line for line in logged_argv)

    received = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "cat", tag, "/token", "/v"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert received == f"{canary}v1\n"

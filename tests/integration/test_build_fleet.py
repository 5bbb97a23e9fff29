"""`stagecraft build` engine: real docker builds of the fleet images, tags per version."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stagecraft.config.loader import LoadedConfig, load_project
from stagecraft.deploy.build import execute_build, image_exists, plan_build
from stagecraft.deploy.release import new_release, resolve_version

FLEET = Path(__file__).resolve().parents[2] / "examples" / "fleet"
pytestmark = pytest.mark.integration


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """The fleet example in a fresh git repo, under a unique project name; images removed."""
    name = f"fleetbuild{uuid.uuid4().hex[:8]}"
    root = tmp_path / "fleet"
    shutil.copytree(FLEET, root)
    text = (root / "stagecraft.yml").read_text().replace("project: fleet", f"project: {name}")
    (root / "stagecraft.yml").write_text(text)
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "fleet")
    yield root, name
    listed = subprocess.run(
        ["docker", "images", "-q", "--filter", f"label=stagecraft.project={name}"],
        capture_output=True,
        text=True,
    ).stdout.split()
    if listed:
        subprocess.run(["docker", "rmi", "-f", *sorted(set(listed))], capture_output=True)


def _load(root: Path, busybox: str) -> LoadedConfig:
    return load_project(root / "stagecraft.yml", environ={**os.environ, "BUSYBOX_IMAGE": busybox})


def _app_version(tag: str) -> str:
    out = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "sh", tag, "-c", "echo $APP_VERSION"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip()


def test_builds_tags_skips_and_marks_dirty(project: tuple[Path, str], busybox_image: str) -> None:
    root, name = project
    loaded = _load(root, busybox_image)
    version = resolve_version(root)
    assert not version.dirty and len(version.value) == 12
    plan = plan_build(loaded, new_release(loaded.config, "production", version))
    assert [(i.service, i.image) for i in plan.images] == [
        ("web", f"{name}/web:{version.value}"),
        ("worker", f"{name}/worker:{version.value}"),
    ]
    lines: list[tuple[str, str]] = []
    first = execute_build(plan, on_line=lambda service, line: lines.append((service, line)))
    assert [r.status for r in first] == ["built", "built"]
    assert {service for service, _ in lines} == {"web", "worker"}
    assert image_exists(f"{name}/web:{version.value}")
    assert _app_version(f"{name}/web:{version.value}") == version.value

    again = execute_build(plan)
    assert [r.status for r in again] == ["skipped", "skipped"]

    (root / "web" / "www" / "cgi-bin" / "index.cgi").write_text("#!/bin/sh\necho changed\n")
    dirty = resolve_version(root)
    assert dirty.value == f"{version.value}-dirty" and dirty.dirty
    dirty_plan = plan_build(loaded, new_release(loaded.config, "production", dirty))
    assert [r.status for r in execute_build(dirty_plan)] == ["built", "built"]
    assert [r.status for r in execute_build(dirty_plan)] == ["built", "built"]  # never skipped
    assert _app_version(f"{name}/worker:{dirty.value}") == dirty.value


def test_cli_dry_run_prints_the_plan(project: tuple[Path, str], busybox_image: str) -> None:
    root, name = project
    env = {**os.environ, "BUSYBOX_IMAGE": busybox_image}
    out = subprocess.run(
        ["stagecraft", "-c", str(root / "stagecraft.yml"), "build", "--dry-run", "--version", "v9"],
        capture_output=True,
        text=True,
        env={**env, "PATH": f"{Path(os.sys.executable).parent}:{env['PATH']}"},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert f"web: {name}/web:v9 (compose: docker build {root / 'web'})" in out.stdout
    assert not image_exists(f"{name}/web:v9")


def test_compose_platform_and_the_platform_flag_reach_docker_build(
    project: tuple[Path, str], busybox_image: str
) -> None:
    """Issue 12 item 7: build for the hosts' platform, not the laptop's."""
    root, _ = project
    compose = root / "docker-compose.yml"
    compose.write_text(
        compose.read_text().replace("  web:\n", "  web:\n    platform: linux/amd64\n", 1)
    )
    env = {**os.environ, "BUSYBOX_IMAGE": busybox_image}
    env["PATH"] = f"{Path(os.sys.executable).parent}:{env['PATH']}"
    base = ["stagecraft", "-c", str(root / "stagecraft.yml"), "build", "--dry-run", "--json"]

    def planned(*extra: str) -> dict[str, object]:
        out = subprocess.run(
            [*base, "--version", "v9", *extra], capture_output=True, text=True, env=env, timeout=120
        )
        assert out.returncode == 0, out.stderr
        plan = json.loads(out.stdout)
        return {item["service"]: item["platform"] for item in plan["images"]}

    assert planned() == {"web": "linux/amd64", "worker": None}
    assert planned("--platform", "linux/arm64") == {"web": "linux/arm64", "worker": "linux/arm64"}


def test_images_present_asks_the_local_daemon_once_for_images_it_has() -> None:
    """The ship phase's local check: all present in one call; a missing one is told apart."""
    from stagecraft.deploy.build import images_present
    from stagecraft.testing.images import ensure_busybox_image, ensure_caddy_image

    busybox, caddy = ensure_busybox_image(), ensure_caddy_image()
    missing = f"stagecraft-test/absent-{uuid.uuid4().hex[:8]}:v1"
    assert images_present([busybox, caddy, busybox]) == {busybox: True, caddy: True}
    assert images_present([busybox, missing]) == {busybox: True, missing: False}
    assert images_present([]) == {}

"""Release identity: versions from git, release ids, image tags, the dirty check."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stagecraft.config.models import StagecraftConfig
from stagecraft.deploy.release import (
    DirtyTreeError,
    ReleaseError,
    Version,
    check_dirty,
    explicit_version,
    git_version,
    image_repository,
    new_release,
    parse_release_id,
    release_id,
    resolve_version,
)
from stagecraft.errors import UsageError


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    _git(tmp_path, "init", "-q")
    (tmp_path / "app.txt").write_text("one\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "one")
    return tmp_path


def test_clean_tree_gives_the_12_char_sha(repo: Path) -> None:
    version = git_version(repo)
    assert version == Version(_git(repo, "rev-parse", "--short=12", "HEAD"), False, "git")
    assert len(version.value) == 12


def test_changed_or_untracked_files_make_the_version_dirty(repo: Path) -> None:
    sha = _git(repo, "rev-parse", "--short=12", "HEAD")
    (repo / "app.txt").write_text("two\n")
    assert git_version(repo) == Version(f"{sha}-dirty", True, "git")
    _git(repo, "checkout", "-q", "--", "app.txt")
    (repo / "new.txt").write_text("x\n")
    assert git_version(repo).dirty


def test_no_git_repository_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ReleaseError, match="no git commit") as info:
        git_version(tmp_path)
    assert info.value.hint and "--version" in info.value.hint


def test_explicit_version_wins_and_is_validated(tmp_path: Path) -> None:
    assert resolve_version(tmp_path, "v1.2") == Version("v1.2", False, "flag")
    assert explicit_version("abc-dirty").dirty
    for bad in ("", "-x", "a b", "x" * 129, "a/b"):
        with pytest.raises(ReleaseError, match="not a valid image tag"):
            explicit_version(bad)


def test_dirty_versions_need_allow_dirty() -> None:
    check_dirty(Version("abc"), env="production", allow_dirty=False)
    check_dirty(Version("abc-dirty", True), env="production", allow_dirty=True)
    with pytest.raises(DirtyTreeError, match="not deploying it to production") as info:
        check_dirty(Version("abc-dirty", True), env="production", allow_dirty=False)
    assert info.value.hint and "--allow-dirty" in info.value.hint


def test_release_ids_sort_by_time_and_parse_back() -> None:
    version = Version("0123456789ab")
    early = release_id(version, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    late = release_id(version, datetime(2026, 11, 2, 3, 4, 5, tzinfo=UTC))
    assert early == "20260102T030405Z-0123456789ab"
    assert sorted([late, early]) == [early, late]
    assert parse_release_id(early) == (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "0123456789ab")
    with pytest.raises(UsageError, match="not a release id"):
        parse_release_id("yesterday")


@pytest.mark.parametrize(
    ("data", "env", "expected"),
    [
        ({"project": "shop"}, None, "shop/api:v1"),
        ({"project": {"name": "shop", "registry": "ghcr.io/acme"}}, None, "ghcr.io/acme/api:v1"),
        (
            {
                "project": {"name": "shop", "registry": "ghcr.io/acme"},
                "environments": {
                    "prod": {
                        "hosts": {"a": {"address": "10.0.0.1", "roles": ["web"]}},
                        "images": {"transfer": "registry", "registry": "registry.local:5000"},
                    }
                },
            },
            "prod",
            "registry.local:5000/api:v1",
        ),
    ],
)
def test_image_tags_follow_adr_0005(
    data: dict[str, object], env: str | None, expected: str
) -> None:
    config = StagecraftConfig.model_validate(data)
    release = new_release(config, env, Version("v1"))
    assert release.image_for("api") == expected
    assert image_repository(config, env) == expected.rsplit("/", 1)[0]

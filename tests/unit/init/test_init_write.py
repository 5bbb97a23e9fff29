"""Where ``init`` writes, and that it never clobbers a file without ``--force``."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from stagecraft.errors import ExitCode, UsageError
from stagecraft.init import ConfigExistsError, output_path, write_config


def test_default_output_is_stagecraft_yml_in_cwd(tmp_path: Path) -> None:
    assert output_path(None, cwd=tmp_path) == tmp_path.resolve() / "stagecraft.yml"


def test_an_existing_stagecraft_yaml_is_the_target(tmp_path: Path) -> None:
    (tmp_path / "stagecraft.yaml").write_text("project: x\n")
    assert output_path(None, cwd=tmp_path) == tmp_path.resolve() / "stagecraft.yaml"


def test_explicit_paths_are_relative_to_cwd(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    assert (
        output_path(Path("sub/custom.yml"), cwd=tmp_path) == tmp_path.resolve() / "sub/custom.yml"
    )
    absolute = tmp_path / "abs.yml"
    assert output_path(absolute, cwd=Path("/")) == absolute.resolve()


def test_an_explicit_directory_means_the_config_inside_it(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    assert output_path(Path("app"), cwd=tmp_path) == tmp_path.resolve() / "app/stagecraft.yml"
    (tmp_path / "app" / "stagecraft.yaml").write_text("project: x\n")
    assert output_path(Path("app"), cwd=tmp_path) == tmp_path.resolve() / "app/stagecraft.yaml"


def test_write_creates_a_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "stagecraft.yml"
    write_config(path, "project: x\n")
    assert path.read_text() == "project: x\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(os.listdir(tmp_path)) == ["stagecraft.yml"]


def test_existing_file_is_left_untouched_without_force(tmp_path: Path) -> None:
    path = tmp_path / "stagecraft.yml"
    path.write_bytes(b"project: mine  # hand-edited\n")
    with pytest.raises(ConfigExistsError) as info:
        write_config(path, "project: x\n")
    assert info.value.exit_code == ExitCode.USAGE
    assert "already exists" in info.value.message
    assert info.value.hint is not None and "--force" in info.value.hint
    assert path.read_bytes() == b"project: mine  # hand-edited\n"


def test_force_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "stagecraft.yml"
    path.write_text("project: old\n")
    write_config(path, "project: new\n", force=True)
    assert path.read_text() == "project: new\n"
    assert sorted(os.listdir(tmp_path)) == ["stagecraft.yml"]


def test_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        write_config(tmp_path / "nope" / "stagecraft.yml", "project: x\n")

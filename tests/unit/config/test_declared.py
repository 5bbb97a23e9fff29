"""The names a stagecraft.yml declares, read leniently for shell completion."""

from __future__ import annotations

from pathlib import Path

import pytest

from stagecraft.config.declared import DeclaredNames, declared_names

CONFIG = """\
project: shop
environments:
  staging:
    hosts:
      stage-1: {address: 203.0.113.10, roles: [web]}
    roles:
      web: [api, web]
  production:
    hosts:
      web-1: {address: "${WEB1:-203.0.113.11}", roles: [web]}
      data-1: {address: 203.0.113.13, roles: [data, jobs]}
    roles:
      web: [api, web]
      data: [db]
      jobs: [worker, "${EXTRA_SERVICE}"]
"""
# Nine levels of ten aliases each: 10**9 copies if expanded.
BILLION_LAUGHS = (
    "l0: &l0 [lol]\n"
    + "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 10))
    + "environments: {staging: {hosts: *l9}}\n"
)


def names(tmp_path: Path, text: str) -> DeclaredNames:
    path = tmp_path / "stagecraft.yml"
    path.write_text(text)
    return declared_names(path)


def test_environments_hosts_and_services_in_file_order(tmp_path: Path) -> None:
    declared = names(tmp_path, CONFIG)
    assert declared.environments == ("staging", "production")
    assert declared.hosts("production") == ["web-1", "data-1"]
    assert declared.hosts("staging") == ["stage-1"]
    assert declared.services("staging") == ["api", "web"]
    # A name that means something only after interpolation is not offered.
    assert declared.services("production") == ["api", "web", "db", "worker"]


def test_without_an_environment_every_environments_names_once(tmp_path: Path) -> None:
    declared = names(tmp_path, CONFIG)
    assert declared.hosts(None) == ["stage-1", "web-1", "data-1"]
    assert declared.services(None) == ["api", "web", "db", "worker"]
    assert declared.hosts("qa") == declared.hosts(None)


@pytest.mark.parametrize(
    "text",
    [
        "environments: [unclosed\n",
        "",
        "- a list\n",
        "project: shop\n",
        "environments: [staging]\n",
        "environments:\n  staging: 3\n  ${X}: {hosts: {a: {}}}\n",
        BILLION_LAUGHS,
    ],
    ids=["broken-yaml", "empty", "not-a-mapping", "no-environments", "a-list", "odd", "aliases"],
)
def test_a_file_without_usable_names_gives_none_and_never_raises(tmp_path: Path, text: str) -> None:
    declared = names(tmp_path, text)
    assert declared.hosts(None) == [] and declared.services("staging") == []
    assert set(declared.environments) <= {"staging"}


def test_an_unreadable_file_gives_no_names(tmp_path: Path) -> None:
    assert declared_names(tmp_path / "missing.yml") == DeclaredNames()
    (tmp_path / "binary.yml").write_bytes(b"\xff\xfe\x00")
    assert declared_names(tmp_path / "binary.yml").environments == ()

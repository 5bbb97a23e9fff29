"""Environment, host and service names given on the command line: did-you-mean when unknown."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import pytest

from stagecraft.compose.extension import XStagecraft
from stagecraft.compose.model import ComposeError, ComposeProject, _service
from stagecraft.config.loader import LoadedConfig, load_config
from stagecraft.errors import ExitCode, UnknownName

pytestmark = pytest.mark.usefixtures("fakes")


@pytest.fixture
def loaded(reference: Path, monkeypatch: pytest.MonkeyPatch) -> LoadedConfig:
    monkeypatch.chdir(reference)  # files are named relative to where the user is
    return load_config(reference / "stagecraft.yml", environ={})


def with_compose(loaded: LoadedConfig, *services: str) -> LoadedConfig:
    compose = ComposeProject(
        name="shop",
        files=(loaded.root / "docker-compose.yml",),
        services=MappingProxyType(
            {n: _service(n, {"image": "x"}, XStagecraft()) for n in services}
        ),
        raw=MappingProxyType({}),
        project_directory=loaded.root,
    )
    return replace(loaded, compose=compose)


def test_unknown_environment_suggests_the_closest(loaded: LoadedConfig) -> None:
    with pytest.raises(UnknownName) as info:
        loaded.environment("stagign")
    assert info.value.message == (
        "unknown environment 'stagign'; known: staging (did you mean 'staging'?)"
    )
    assert info.value.exit_code == ExitCode.USAGE
    assert info.value.hint == "add it under `environments:` in stagecraft.yml"


def test_unknown_host_suggests_the_closest_ones(loaded: LoadedConfig) -> None:
    assert loaded.host("staging", "web-2").port == 22
    with pytest.raises(UnknownName) as info:
        loaded.host("staging", "web")
    assert info.value.message == (
        "unknown host 'web' in environment staging; known: web-1, web-2, data-1 "
        "(did you mean 'web-1' or 'web-2'?)"
    )
    with pytest.raises(UnknownName, match="unknown environment 'prod'"):
        loaded.host("prod", "web-1")


def test_unknown_service_is_checked_against_compose_when_loaded(loaded: LoadedConfig) -> None:
    with_model = with_compose(loaded, "api", "web", "postgres", "mailpit", "worker")
    with_model.check_service("mailpit")
    with pytest.raises(UnknownName) as info:
        with_model.check_service("apii")
    assert info.value.message == (
        "unknown service 'apii' in docker-compose.yml; "
        "known: api, mailpit, postgres, web, worker (did you mean 'api'?)"
    )


def test_without_compose_the_services_the_config_names_are_known(loaded: LoadedConfig) -> None:
    loaded.check_service("worker")
    with pytest.raises(UnknownName) as info:
        loaded.check_service("wroker")
    assert "in stagecraft.yml; known: api, mailpit, postgres, web, worker" in info.value.message
    assert info.value.message.endswith("(did you mean 'worker'?)")


def test_compose_service_lookup_suggests_too(loaded: LoadedConfig) -> None:
    compose = with_compose(loaded, "api", "web").compose
    assert compose is not None
    with pytest.raises(ComposeError, match=r"no service 'wbe' \(did you mean 'web'\?\)"):
        compose.service("wbe")

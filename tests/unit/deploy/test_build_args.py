"""Build-arg values travel in the docker client's environment, never on its command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from stagecraft.deploy.build import (
    BuildError,
    ImageBuild,
    build_arg_env,
    docker_build_argv,
)
from stagecraft.deploy.release import Release, Version

RELEASE = Release("20261123T100000Z-aaa", Version("3f2a9c1d0e4b"), "shop", "production", "shop")


def image(**args: str) -> ImageBuild:
    return ImageBuild("api", "shop/api:3f2a9c1d0e4b", "compose", Path("/src/api"), args=args)


def test_argv_names_build_args_and_the_environment_carries_their_values() -> None:
    item = image(NPM_TOKEN="npm_s3cret value", NODE_ENV="production")
    argv = docker_build_argv(item, RELEASE)
    assert argv[:4] == ["docker", "build", "-t", "shop/api:3f2a9c1d0e4b"]
    assert "npm_s3cret value" not in " ".join(argv) and "production" not in argv
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--build-arg"] == [
        "NODE_ENV",
        "NPM_TOKEN",
        "STAGECRAFT_VERSION",
    ]
    assert build_arg_env(item, RELEASE) == {
        "NPM_TOKEN": "npm_s3cret value",
        "NODE_ENV": "production",
        "STAGECRAFT_VERSION": "3f2a9c1d0e4b",
    }


@pytest.mark.parametrize("name", ["DOCKER_HOST", "DOCKER_CONFIG", "PATH", "HOME"])
def test_a_build_arg_named_like_a_docker_client_variable_is_refused(name: str) -> None:
    with pytest.raises(BuildError, match=f"service api: build arg {name} "):
        build_arg_env(image(**{name: "x"}), RELEASE)


def test_the_plan_shows_build_arg_values_redacted() -> None:
    item = image(NPM_TOKEN="npm_s3cret", DB="postgresql://u:pa#ss@db/x", NODE_ENV="production")
    assert item.to_json()["args"] == {
        "DB": "postgresql://u:***@db/x",
        "NODE_ENV": "production",
        "NPM_TOKEN": "***",
    }


def test_a_platform_goes_on_the_command_line_and_in_the_plan() -> None:
    item = ImageBuild(
        "api", "shop/api:3f2a9c1d0e4b", "compose", Path("/src/api"), platform="linux/amd64"
    )
    argv = docker_build_argv(item, RELEASE)
    assert argv[argv.index("--platform") + 1] == "linux/amd64"
    assert item.to_json()["platform"] == "linux/amd64"
    assert "--platform" not in docker_build_argv(image(), RELEASE)

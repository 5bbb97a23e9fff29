"""The deploy result as a value: aggregate text, JSON, and the exit code of a failure."""

from __future__ import annotations

from stagecraft.config.models import EnvironmentConfig
from stagecraft.deploy.pipeline import (
    DeployFailed,
    DeployResult,
    HostResult,
    render_result,
)
from stagecraft.deploy.pipeline_ship import registry_target
from stagecraft.deploy.release import Release, Version
from stagecraft.deploy.rollout import ServiceOutcome
from stagecraft.deploy.ship import RegistryTarget, registry_server
from stagecraft.errors import ExitCode
from stagecraft.providers.secrets import SecretValue


def _result(*hosts: HostResult) -> DeployResult:
    return DeployResult("shop", "prod", "20261123T101500Z-v2", "v2", "deploy", hosts)


OK = HostResult("web-1", "success", (ServiceOutcome("web", "replace", "success"),))
UNHEALTHY = HostResult(
    "web-2",
    "failed",
    (ServiceOutcome("web", "replace", "failed", "web-2: web: not healthy", ExitCode(3)),),
    "web: web-2: web: not healthy",
    ExitCode.HEALTH_CHECK_FAILED,
)
LOST = HostResult("data-1", "failed", (), "connection refused", ExitCode.UNREACHABLE)


def test_a_failed_health_check_anywhere_gives_exit_3_and_names_every_failed_host() -> None:
    error = DeployFailed(_result(OK, UNHEALTHY, LOST))
    assert error.exit_code == ExitCode.HEALTH_CHECK_FAILED
    assert error.message == "deploy of v2 to prod failed on web-2, data-1"
    assert error.lines()[1:] == [
        "  web-2: failed: web: web-2: web: not healthy",
        "  data-1: failed: connection refused",
    ]


def test_only_unreachable_hosts_give_exit_5_and_mixed_causes_exit_1() -> None:
    assert DeployFailed(_result(OK, LOST)).exit_code == ExitCode.UNREACHABLE
    other = HostResult("web-3", "failed", (), "compose failed", ExitCode.FAILED)
    assert DeployFailed(_result(LOST, other)).exit_code == ExitCode.FAILED


def test_aggregate_text_and_json_list_every_host_and_service() -> None:
    result = _result(OK, UNHEALTHY)
    assert not result.ok
    assert render_result(result).splitlines() == [
        "deploy v2 to prod (20261123T101500Z-v2)",
        "  web-1: success",
        "    web: replace success",
        "  web-2: failed (web: web-2: web: not healthy)",
        "    web: replace failed",
        "failed",
    ]
    data = result.to_json()
    assert data["outcome"] == "failed"
    assert [h["outcome"] for h in data["hosts"]] == ["success", "failed"]
    assert data["hosts"][1]["services"][0]["error"] == "web-2: web: not healthy"
    assert _result(OK).ok and _result(OK).to_json()["outcome"] == "success"


def _environment(images: dict[str, str]) -> EnvironmentConfig:
    return EnvironmentConfig.model_validate(
        {
            "hosts": {"web-1": {"address": "203.0.113.10", "roles": ["web"]}},
            "roles": {"web": ["web"]},
            "images": images,
            "secrets": ["GHCR_TOKEN"],
        }
    )


def test_registry_mode_targets_the_release_prefix_with_the_secret_password() -> None:
    environment = _environment(
        {
            "transfer": "registry",
            "registry": "ghcr.io/acme",
            "username": "acme",
            "password_secret": "GHCR_TOKEN",
            "push_registry": "localhost:5000/acme",
        }
    )
    release = Release("r1", Version("v2"), "shop", "prod", "ghcr.io/acme")
    token = SecretValue("s3cret", name="GHCR_TOKEN")

    target = registry_target(environment, release, {"GHCR_TOKEN": token})

    assert target == RegistryTarget(
        "ghcr.io/acme", username="acme", password=token, push_registry="localhost:5000/acme"
    )
    assert "s3cret" not in repr(target)
    assert registry_target(_environment({"transfer": "ssh"}), release, {}) is None
    assert registry_server("ghcr.io/acme") == "ghcr.io"
    assert registry_server("localhost:5000") == "localhost:5000"

"""The deploy result as a value: aggregate text, JSON, and the exit code of a failure."""

from __future__ import annotations

import pytest

from stagecraft.config.models import DeployConfig, EnvironmentConfig
from stagecraft.deploy import pipeline
from stagecraft.deploy.pipeline import (
    DeployFailed,
    DeployResult,
    HostResult,
    render_result,
)
from stagecraft.deploy.release import Release, Version
from stagecraft.deploy.render import RenderedHost
from stagecraft.deploy.rollout import HostContext, ServiceOutcome
from stagecraft.deploy.rollout.result import HostJob
from stagecraft.deploy.ship import RegistryTarget, registry_server
from stagecraft.deploy.ship.stage import registry_target
from stagecraft.errors import ExitCode
from stagecraft.providers.secrets import SecretValue
from stagecraft.testing.fakes import FakeSSHHost


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


def test_a_failed_boot_group_stops_the_later_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Boot groups of 2 with a pause: web-2 fails in the first group, web-3/web-4 never run."""
    ran: list[str] = []
    slept: list[float] = []

    def run_steps(ctx: HostContext, steps: object) -> list[ServiceOutcome]:
        ran.append(ctx.host.name)
        failed = ctx.host.name == "web-2"
        if failed:
            return [ServiceOutcome("web", "replace", "failed", "not healthy", ExitCode(3))]
        return [ServiceOutcome("web", "replace", "success")]

    monkeypatch.setattr(pipeline, "run_steps", run_steps)
    monkeypatch.setattr("stagecraft.deploy.pipeline.time.sleep", slept.append)
    environment = _environment({"transfer": "ssh"}).model_copy(
        update={"deploy": DeployConfig.model_validate({"boot": {"limit": 2, "wait": 5}})}
    )
    jobs = [_job(f"web-{n}") for n in (1, 2, 3, 4)]

    pipeline._stage(jobs, environment, pipeline.DeployOptions(), first=False)

    assert sorted(ran) == ["web-1", "web-2"] and slept == []
    assert [j.error for j in jobs[:2]] == [None, "web: not healthy"]
    assert jobs[1].exit_code == ExitCode.HEALTH_CHECK_FAILED
    for job in jobs[2:]:
        assert job.error == "not rolled out: an earlier boot group failed"
        assert job.exit_code == ExitCode.FAILED

    ran.clear()
    fine = [_job(f"api-{n}") for n in (1, 2, 3)]
    pipeline._stage(fine, environment, pipeline.DeployOptions(), first=False)
    assert ran[:2] in (["api-1", "api-2"], ["api-2", "api-1"]) and ran[2] == "api-3"
    assert slept == [5.0] and all(j.error is None for j in fine)


def _job(name: str) -> HostJob:
    host = FakeSSHHost(name)
    rendered = RenderedHost(name, "192.0.2.1", "shop-prod", {}, {})
    job = HostJob(host, rendered)
    job.ctx = HostContext(host, rendered, "/r", project="shop", env="prod", health_timeout=5)
    return job

"""Rollout decisions (order, strategy, stages) and one host's steps against a FakeSSHHost."""

from __future__ import annotations

import json
import re

import pytest
from model_helpers import fleet_release, load_fleet

from stagecraft.deploy.plan import HostPlan, ServicePlan
from stagecraft.deploy.render import RenderedHost, RenderedService, render_hosts
from stagecraft.deploy.rollout import HostContext, parse_inspect, run_step, run_steps
from stagecraft.deploy.rollout_steps import (
    HttpCheck,
    ServiceSettings,
    Step,
    dependency_order,
    plan_steps,
    service_settings,
    split_stages,
)
from stagecraft.errors import ExitCode, HealthCheckFailed
from stagecraft.testing.fakes import FakeSSHHost

SECRET = "s3cret-value-42"


def _service(name: str, kind: str, depends: tuple[str, ...] = ()) -> RenderedService:
    definition = {"image": f"x/{name}:1", "depends_on": {d: {} for d in depends}}
    return RenderedService(name, kind, f"x/{name}:1", f"sha256:{name}", (), definition)


def _host(*services: RenderedService) -> RenderedHost:
    by_name = {s.name: s for s in services}
    return RenderedHost("h1", "10.0.0.1", "shop-prod", by_name, {"services": {}})


def test_dependencies_come_first_then_kind_then_name() -> None:
    host = _host(
        _service("jobs", "worker", ("api",)),
        _service("api", "web", ("cache",)),
        _service("cache", "accessory"),
        _service("mailer", "worker"),
        _service("admin", "web"),
    )
    # Depth first in (kind, name) order: jobs pulls in api, which pulls in cache.
    assert dependency_order(host) == ["cache", "api", "jobs", "mailer", "admin"]


def test_fleet_data_host_steps_and_stages() -> None:
    loaded = load_fleet()
    rendered = render_hosts(loaded, "production", fleet_release(loaded))["data-1"]
    plan = HostPlan(
        "data-1",
        rendered.address,
        (
            ServicePlan("db", "replace", "accessory", changes=("config",)),
            ServicePlan("old", "remove", "worker"),
            ServicePlan("worker", "replace", "worker", changes=("image",)),
        ),
    )
    settings = {
        "worker": service_settings(
            loaded.compose.services["worker"] if loaded.compose else pytest.fail("no compose"),
            "worker",
            route_port=None,
            drain=30.0,
        )
    }
    steps = plan_steps(rendered, plan, settings)
    assert [(s.service, s.strategy) for s in steps] == [
        ("db", "recreate"),
        ("worker", "side-by-side"),
        ("old", "remove"),
    ]
    assert steps[1].settings is not None and steps[1].settings.stop_grace == 5.0
    first, rest = split_stages(steps)
    assert [s.service for s in first] == ["db"]
    assert [s.service for s in rest] == ["worker", "old"]


def test_web_settings_take_the_x_stagecraft_health_check_and_drain() -> None:
    loaded = load_fleet()
    assert loaded.compose is not None
    web = service_settings(loaded.compose.services["web"], "web", route_port=8080, drain=30.0)
    assert web.http_check == HttpCheck("/healthz/", 8080, 1.0, 3.0)
    assert web.drain == 2.0


def _inspect_json(cid: str, status: str, health: str | None = None) -> str:
    state: dict[str, object] = {"Status": status}
    if health is not None:
        state["Health"] = {"Status": health}
    networks = {"stagecraft": {"IPAddress": "172.18.0.9"}}
    item = {"Id": cid, "State": state, "RestartCount": 0, "NetworkSettings": {"Networks": networks}}
    return json.dumps([item])


def test_parse_inspect_reads_status_health_and_addresses() -> None:
    [info] = parse_inspect(_inspect_json("abc", "running", "starting"))
    assert (info.id, info.status, info.health, info.address("stagecraft")) == (
        "abc",
        "running",
        "starting",
        "172.18.0.9",
    )
    [plain] = parse_inspect(_inspect_json("def", "running"))
    assert plain.health == "none"


ALL = re.compile(r"^docker ps -q --no-trunc -a --filter")
RUNNING = re.compile(r"^docker ps -q --no-trunc --filter")


def _ctx(host: FakeSSHHost, kind: str) -> HostContext:
    rendered = _host(_service("web", kind))
    return HostContext(
        host,
        rendered,
        "/rel",
        project="shop",
        env="prod",
        health_timeout=5,
        secrets=(SECRET,),
    )


def test_unhealthy_new_web_container_is_removed_and_old_keeps_serving() -> None:
    host = FakeSSHHost("h1")
    host.expect(ALL, stdout="old1\n").expect(RUNNING, stdout="old1\n")
    host.expect(re.compile(r"docker compose -p shop-prod up -d --no-deps --no-recreate "
                           r"--scale web=2 web$"))  # fmt: skip
    host.expect(ALL, stdout="old1\nnew1\n")
    host.expect("docker inspect new1", stdout=_inspect_json("new1", "exited"))
    host.expect("docker logs --tail 15 new1", stdout=f"boom: bad password {SECRET}\n")
    host.expect("docker rm -f new1")
    settings = ServiceSettings("web", "web", HttpCheck("/h", 80, 0.1, 1), 0.0, 5.0)
    with pytest.raises(HealthCheckFailed) as caught:
        run_step(_ctx(host, "web"), Step("web", "web", "replace", "side-by-side", settings))
    assert caught.value.exit_code == ExitCode.HEALTH_CHECK_FAILED
    assert "h1: web:" in caught.value.message and "boom" in caught.value.message
    assert SECRET not in caught.value.message
    assert not any("old1" in line and "stop" in line for line in host.commands)
    host.assert_all_used()


def test_worker_replaced_side_by_side_then_old_stopped_with_its_grace() -> None:
    host = FakeSSHHost("h1")
    host.expect(ALL, stdout="old1\n").expect(RUNNING, stdout="old1\n")
    host.expect(re.compile(r"up -d --no-deps --no-recreate --scale web=2 web$"))
    host.expect(ALL, stdout="new1\nold1\n")
    host.expect("docker inspect new1", stdout=_inspect_json("new1", "running", "healthy"))
    host.expect("docker stop -t 5 old1")
    host.expect("docker rm -f old1")
    settings = ServiceSettings("web", "worker", None, 0.0, 5.0)
    outcomes = run_steps(
        _ctx(host, "worker"),
        [
            Step("web", "worker", "replace", "side-by-side", settings),
            Step("x", "worker", "keep", "keep"),
        ],
    )
    assert [(o.service, o.outcome) for o in outcomes] == [("web", "success"), ("x", "success")]
    host.assert_all_used()


def test_a_failed_step_skips_the_rest_of_the_host() -> None:
    host = FakeSSHHost("h1")
    host.expect(re.compile(r"up -d --no-deps web$"), returncode=1, stderr="no such image")
    outcomes = run_steps(
        _ctx(host, "worker"),
        [Step("web", "worker", "create", "start"), Step("later", "worker", "create", "start")],
    )
    assert [(o.service, o.outcome) for o in outcomes] == [("web", "failed"), ("later", "skipped")]
    assert outcomes[0].error is not None and "no such image" in outcomes[0].error


def test_a_new_service_that_never_gets_ready_is_removed() -> None:
    host = FakeSSHHost("h1")
    host.expect(re.compile(r"up -d --no-deps web$"))
    host.expect(ALL, stdout="new1\n")
    host.expect("docker inspect new1", stdout=_inspect_json("new1", "restarting"), times=None)
    host.expect("docker logs --tail 15 new1", stdout="crash\n")
    host.expect("docker rm -f new1")
    ctx = HostContext(host, _host(_service("web", "worker")), "/rel", "shop", "prod", 0.3)
    outcomes = run_steps(ctx, [Step("web", "worker", "create", "start")])
    assert outcomes[0].outcome == "failed" and outcomes[0].exit_code == ExitCode(3)
    assert "container restarting after 0.3s" in (outcomes[0].error or "")
    host.assert_all_used()


def test_without_health_checks_ready_means_running_for_the_grace_period() -> None:
    host = FakeSSHHost("h1")
    host.expect(re.compile(r"up -d --no-deps web$"))
    host.expect(ALL, stdout="new1\n")
    host.expect("docker inspect new1", stdout=_inspect_json("new1", "running"), times=None)
    ctx = HostContext(host, _host(_service("web", "worker")), "/rel", "shop", "prod", 5, grace=0.2)
    outcomes = run_steps(ctx, [Step("web", "worker", "create", "start")])
    assert outcomes[0].outcome == "success"
    assert sum(line == "docker inspect new1" for line in host.commands) >= 2

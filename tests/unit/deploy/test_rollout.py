"""Rollout decisions (order, strategy, stages) and one host's steps against a FakeSSHHost."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from model_helpers import fleet_release, load_fleet

from stagecraft.deploy.plan import HostPlan, ServicePlan
from stagecraft.deploy.render import RenderedHost, RenderedService, render_hosts
from stagecraft.deploy.rollout import HostContext, run_step, run_steps
from stagecraft.deploy.rollout.script import StartSpec, parse_start, start_script
from stagecraft.deploy.rollout.steps import (
    HttpCheck,
    ServiceSettings,
    Step,
    dependency_order,
    plan_steps,
    service_settings,
    split_stages,
    waves,
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


SCRIPT = re.compile(r"^sh -c .*docker compose -p shop-prod up -d --no-deps", re.S)


def _ctx(host: FakeSSHHost, kind: str, *names: str) -> HostContext:
    rendered = _host(*(_service(n, kind) for n in (names or ("web",))))
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
    host.expect(
        re.compile(r"^sh -c .*--no-recreate --scale .web=\$scale. web", re.S),
        stdout="@old old1\n@new new1\n@addr old1 172.18.0.5\n@failed exited (exited)\n",
        returncode=1,
    )
    host.expect("docker logs --tail 15 new1", stdout=f"boom: bad password {SECRET}\n")
    host.expect("docker rm -f new1")
    settings = ServiceSettings("web", "web", HttpCheck("/h", 80, 0.1, 1), 0.0, 5.0)
    with pytest.raises(HealthCheckFailed) as caught:
        run_step(_ctx(host, "web"), Step("web", "web", "replace", "side-by-side", settings))
    assert caught.value.exit_code == ExitCode.HEALTH_CHECK_FAILED
    assert "h1: web:" in caught.value.message and "exited (exited)" in caught.value.message
    assert "boom" in caught.value.message and SECRET not in caught.value.message
    assert not any("old1" in line and "stop" in line for line in host.commands)
    host.assert_all_used()


def test_worker_replaced_side_by_side_then_old_stopped_with_its_grace() -> None:
    host = FakeSSHHost("h1")
    host.expect(
        re.compile(r"^sh -c .*--no-recreate --scale .web=\$scale. web", re.S),
        stdout="@old old1\n@new new1\n@ready\n",
    )
    host.expect(re.compile(r"^sh -c 'docker stop -t 5 old1 >/dev/null; docker rm -f old1"))
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


def test_a_failed_step_skips_the_steps_that_depend_on_it() -> None:
    host = FakeSSHHost("h1")
    host.expect(SCRIPT, stdout="@error docker compose up failed: no such image\n", returncode=1)
    outcomes = run_steps(
        _ctx(host, "worker"),
        [
            Step("web", "worker", "create", "start"),
            Step("later", "worker", "create", "start", after=("web",)),
        ],
    )
    assert [(o.service, o.outcome) for o in outcomes] == [("web", "failed"), ("later", "skipped")]
    assert outcomes[0].error is not None and "no such image" in outcomes[0].error
    assert outcomes[0].exit_code == ExitCode.FAILED


def test_services_that_do_not_depend_on_each_other_roll_out_together() -> None:
    host = FakeSSHHost("h1")
    host.expect(SCRIPT, stdout="@new n\n@ready\n", times=2)
    ctx = _ctx(host, "worker", "a", "b")
    steps = [Step("a", "worker", "create", "start"), Step("b", "worker", "create", "start")]
    assert waves(steps) == [steps]
    outcomes = run_steps(ctx, steps)
    assert [(o.service, o.outcome) for o in outcomes] == [("a", "success"), ("b", "success")]
    host.assert_all_used()


def test_a_new_service_that_never_gets_ready_is_removed() -> None:
    host = FakeSSHHost("h1")
    host.expect(SCRIPT, stdout="@new new1\n@failed exited (its process ended)\n", returncode=1)
    host.expect("docker logs --tail 15 new1", stdout="crash\n")
    host.expect("docker rm -f new1")
    ctx = HostContext(host, _host(_service("web", "worker")), "/rel", "shop", "prod", 0.3)
    outcomes = run_steps(ctx, [Step("web", "worker", "create", "start")])
    assert outcomes[0].outcome == "failed" and outcomes[0].exit_code == ExitCode(3)
    assert "exited (its process ended)" in (outcomes[0].error or "")
    host.assert_all_used()


def test_the_start_script_waits_by_health_events_http_or_ready_after() -> None:
    spec = StartSpec("shop-prod", "/rel", "web", None, False, 60, None, 0.2, "stagecraft")
    script = start_script(spec)
    assert "docker events --since" in script and "--filter event=health_status" in script
    assert "sleep 0.2" in script  # neither health check: ready after running 0.2 s
    http = start_script(replace(spec, http_check=HttpCheck("/up'; rm -rf /", 8080, 1.0, 2.0)))
    assert "sleep 0.2" not in http and "http://${2:-none}:8080\"'/up'\"'\"'; rm -rf /'" in http
    assert "docker rm -f $stale" not in script
    assert "docker rm -f $stale" in start_script(replace(spec, side_by_side=True, add=1))


def test_start_results_are_read_line_by_line() -> None:
    result = parse_start("noise\n@old a b\n@new c\n@addr c 172.18.0.9\n@ready\n")
    assert (result.old, result.new, result.addresses, result.ready) == (
        ["a", "b"],
        ["c"],
        {"c": "172.18.0.9"},
        True,
    )
    assert parse_start("@failed Docker healthcheck: unhealthy\n").problem == (
        "Docker healthcheck: unhealthy"
    )

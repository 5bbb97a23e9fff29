"""The Swarm driver's logic without a swarm: reading the stack, waiting, planning, config rules.

The manager is a :class:`~stagecraft.testing.fakes.FakeSSHHost` answering the
one read script with the JSON lines ``docker service inspect`` and ``docker
inspect`` print (fields as Docker 20.10 prints them); the e2e module
``tests/e2e/test_deploy_swarm.py`` runs the same code on a real swarm.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from model_helpers import KEY, VALUES, fleet_release, swarm_fleet

from stagecraft.config.loader import load_project
from stagecraft.config.models import StagecraftConfig
from stagecraft.deploy.swarm import driver
from stagecraft.deploy.swarm.driver import ServiceState, read_stack, wait_converged
from stagecraft.deploy.swarm.plan import StackPlan, compare, render_stack_plan
from stagecraft.deploy.swarm.stack import EDGE_SERVICE, Stack, render_stack
from stagecraft.errors import ConfigError, ExitCode
from stagecraft.testing.fakes import FakeSSHHost

READ = re.compile(r"com\.docker\.stack\.namespace=\$1")


def _service(
    name: str,
    digest: str,
    *,
    replicas: int | None = 1,
    update: dict[str, str] | None = None,
    secrets: tuple[str, ...] = (),
) -> dict[str, Any]:
    mode = {"Replicated": {"Replicas": replicas}} if replicas is not None else {"Global": {}}
    data: dict[str, Any] = {
        "ID": f"id-{name}",
        "Spec": {
            "Name": f"fleet-production_{name}",
            "Labels": {"stagecraft.service": name, "stagecraft.release": "r1"},
            "Mode": mode,
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": f"sha256:{name}",
                    "Labels": {"stagecraft.config-hash": digest},
                    "Secrets": [{"SecretName": s} for s in secrets],
                }
            },
        },
    }
    if update is not None:
        data["UpdateStatus"] = update
    return data


def _task(
    service: str, digest: str, state: str, *, desired: str = "running", err: str = "", n: int = 1
) -> dict[str, Any]:
    return {
        "ID": f"t-{service}-{digest[-4:]}-{state}-{n}",
        "ServiceID": f"id-{service}",
        "NodeID": "node-1",
        "DesiredState": desired,
        "Status": {"State": state, "Err": err},
        "Spec": {"ContainerSpec": {"Labels": {"stagecraft.config-hash": digest}}},
    }


def _answer(services: list[dict[str, Any]], tasks: list[dict[str, Any]]) -> str:
    lines = [json.dumps(s) for s in services] + ["#tasks"] + [json.dumps(t) for t in tasks]
    return "\n".join(lines) + "\n"


def _stack(tmp_path: Path) -> Stack:
    loaded = swarm_fleet(tmp_path)
    return render_stack(loaded, "production", fleet_release(loaded), secrets=VALUES, key=KEY)


def _running(stack: Stack, *, names: tuple[str, ...] = ()) -> tuple[list[Any], list[Any]]:
    """Every service of ``stack`` converged on its desired config."""
    services, tasks = [], []
    for name, digest in stack.config_hashes().items():
        if names and name not in names:
            continue
        replicas = None if name == EDGE_SERVICE else stack.services[name].replicas
        services.append(_service(name, digest, replicas=replicas))
        for n in range(replicas or 2):
            tasks.append(_task(name, digest, "running", n=n))
    return services, tasks


def test_read_stack_parses_services_and_tasks() -> None:
    leader = FakeSSHHost("web-1")
    leader.expect(
        READ,
        stdout=_answer(
            [_service("web", "h2", replicas=2, update={"State": "updating", "StartedAt": "t1"})],
            [_task("web", "h2", "running"), _task("web", "h1", "running", n=2)],
        ),
    )
    found = read_stack(leader, "fleet-production")
    web = found["web"]
    assert (web.config_hash, web.replicas, web.update, web.image) == (
        "h2",
        2,
        "updating",
        "sha256:web",
    )
    assert web.running("h2") == 1 and not web.converged()


def test_a_changed_service_converges_after_an_update(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver, "POLL", 0.0)
    stack = _stack(tmp_path)
    web = stack.config_hashes()["web"]
    services, tasks = _running(stack)
    before = {
        "web": ServiceState("web", "old", 2, "completed", "t0", ""),
        "db": ServiceState("db", stack.config_hashes()["db"], 1, None, "", ""),
    }
    updating = [
        _service("web", web, replicas=2, update={"State": "updating", "StartedAt": "t1"}),
        *services[1:],
    ]
    leader = FakeSSHHost("web-1")
    leader.expect(READ, stdout=_answer(updating, [_task("web", web, "starting"), *tasks[2:]]))
    leader.expect(READ, stdout=_answer(services, tasks))
    said: list[str] = []
    outcomes = wait_converged(
        leader, stack, before, timeout=30, say=lambda s, m: said.append(f"{s}: {m}")
    )
    by_name = {o.service: (o.action, o.outcome) for o in outcomes}
    assert by_name["web"] == ("update", "success")
    assert by_name["db"] == ("keep", "success")
    assert by_name["worker"] == ("create", "success")
    assert "web: 2 task(s) running" in said


def test_a_rollback_by_swarm_fails_the_service_with_the_task_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver, "POLL", 0.0)
    stack = _stack(tmp_path)
    web = stack.config_hashes()["web"]
    before = {"web": ServiceState("web", "old", 2, "completed", "t0", "")}
    rolled = _service(
        "web",
        "old",
        replicas=2,
        update={"State": "rollback_completed", "StartedAt": "t1", "Message": "rolled back"},
    )
    failed = _task(
        "web",
        web,
        "failed",
        desired="shutdown",
        err="task: non-zero exit (137): dockerexec: unhealthy container",
    )
    leader = FakeSSHHost("web-1")
    leader.expect(READ, stdout=_answer([rolled], [failed, _task("web", "old", "running")]))
    only_web = Stack(
        stack.name,
        stack.network,
        {"services": {"web": stack.document["services"]["web"]}},
        {"web": stack.services["web"]},
        {},
        {},
    )
    outcomes = wait_converged(leader, only_web, before, timeout=30, say=lambda s, m: None)
    assert len(outcomes) == 1
    assert outcomes[0].outcome == "failed"
    assert outcomes[0].exit_code == ExitCode.HEALTH_CHECK_FAILED
    assert "rolled the update back" in (outcomes[0].error or "")
    assert "unhealthy container" in (outcomes[0].error or "")


def test_an_old_rollback_is_not_this_deploys_failure() -> None:
    before = ServiceState("web", "h1", 1, "rollback_completed", "t0", "")
    now = ServiceState("web", "h1", 1, "rollback_completed", "t0", "")
    assert driver._failure(now, before, "h1") is None


def test_a_new_service_failing_three_times_fails_without_the_timeout() -> None:
    tasks = tuple(
        driver.TaskState("db", "h1", "failed", "shutdown", "task: non-zero exit (1)", "n", str(i))
        for i in range(3)
    )
    state = ServiceState("db", "h1", 1, None, "", "", tasks)
    failure = driver._failure(state, None, "h1")
    assert failure is not None
    assert failure[0] == "3 task(s) failed: task: non-zero exit (1)"
    assert failure[1] == ExitCode.FAILED


class _Clock:
    """``time`` for the driver: each poll's sleep moves it one second on."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, _seconds: float) -> None:
        self.now += 1.0


def test_without_a_health_check_the_same_tasks_must_keep_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver, "time", _Clock())
    stack = _stack(tmp_path)
    worker = stack.config_hashes()["worker"]
    only = Stack(
        stack.name,
        stack.network,
        {"services": {"worker": stack.document["services"]["worker"]}},
        {"worker": stack.services["worker"]},
        {},
        {},
    )
    service = [_service("worker", worker)]
    leader = FakeSSHHost("data-1")
    leader.expect(READ, stdout=_answer(service, [_task("worker", worker, "running", n=1)]))
    # then restarted: another task, and the wait starts again (at t=1)
    second = _answer(service, [_task("worker", worker, "running", n=2)])
    leader.expect(READ, stdout=second, times=None)
    outcomes = wait_converged(
        leader, only, {}, timeout=60, say=lambda s, m: None, ready_after={"worker": 3.0}
    )
    assert [(o.service, o.outcome) for o in outcomes] == [("worker", "success")]
    assert len(leader.calls) == 5  # t=0 first task, t=1 restart, t=4 three seconds later


def test_plan_compares_config_hashes_and_names_a_changed_secret(tmp_path: Path) -> None:
    stack = _stack(tmp_path)
    hashes = stack.config_hashes()
    web_secrets = frozenset(n for n, (svc, _) in stack.secret_refs.items() if svc == "web")
    current = {
        "db": ServiceState("db", hashes["db"], 1, None, "", ""),
        "web": ServiceState(
            "web",
            "old",
            2,
            None,
            "",
            "",
            image=str(stack.document["services"]["web"]["image"]),
            secrets=frozenset({"fleet-production_web_DATABASE_URL_000000000000"}),
        ),
        "gone": ServiceState("gone", "x", 1, None, "", ""),
    }
    assert web_secrets
    changes = {c.service: (c.action, c.why) for c in compare(stack, current)}
    assert changes["db"] == ("keep", ())
    assert changes["web"] == ("update", ("secret DATABASE_URL changed",))
    assert changes["worker"] == ("create", ())
    assert changes["gone"] == ("remove", ())
    plan = StackPlan(
        "fleet", "production", "v2", stack.name, "web-1", tuple(compare(stack, current))
    )
    text = render_stack_plan(plan)
    assert "swarm stack fleet-production, leader web-1" in text
    assert "2 create, 1 update, 1 keep, 1 remove" in text
    assert "fleet-password" not in text and "fleet-password" not in json.dumps(plan.to_json())


def test_manager_is_only_for_swarm_and_swarm_ships_over_ssh(tmp_path: Path) -> None:
    base = {
        "project": "shop",
        "environments": {
            "prod": {"hosts": {"a": {"address": "10.0.0.1", "roles": ["web"], "manager": True}}}
        },
    }
    with pytest.raises(ValueError, match="manager is only used with driver: swarm"):
        StagecraftConfig.model_validate(base)
    base["environments"]["prod"]["driver"] = "swarm"  # type: ignore[index]
    config = StagecraftConfig.model_validate(base)
    assert config.environments["prod"].managers == ["a"]
    base["environments"]["prod"]["images"] = {"transfer": "registry", "registry": "r.io/x"}  # type: ignore[index]
    with pytest.raises(ValueError, match="ships images over SSH only"):
        StagecraftConfig.model_validate(base)


def test_the_file_error_points_at_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "stagecraft.yml"
    path.write_text(
        "project: shop\nenvironments:\n  prod:\n    hosts:\n"
        "      a: {address: 10.0.0.1, roles: [web], manager: true}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_project(path)
    assert "stagecraft.yml:3" in str(info.value) and "driver: swarm" in str(info.value)


def test_status_on_a_swarm_takes_the_release_from_the_service_and_drops_task_history() -> None:
    from stagecraft.deploy.state.containers import ContainerState, HostState
    from stagecraft.ops.status import with_releases

    def container(name: str, service: str, state: str) -> ContainerState:
        return ContainerState(
            name, name, service, None, None, "sha256:x", "sha256:x", "h1", "web", state, None, None
        )

    node = HostState(
        "web-2",
        (container("a", "web", "exited"), container("b", "db", "exited")),
    )
    shown = with_releases(node, {"web": ("r2", "v2"), "db": ("r2", "v2")}, running={"web"})
    # web runs on another node: its exited task here is history; db runs nowhere: shown
    assert [(c.service, c.release, c.version) for c in shown.containers] == [("db", "r2", "v2")]


def test_removing_a_swarm_app_goes_through_the_leader_and_waits_for_the_tasks() -> None:
    from stagecraft.deploy.edge import Edge
    from stagecraft.deploy.release import Version, new_release
    from stagecraft.deploy.remove import plan_removal, remove, render_removal

    leader, worker = FakeSSHHost("m1"), FakeSSHHost("w1")
    leader.expect(
        re.compile(r"^docker service ls .*namespace=shop-prod"),
        stdout="shop-prod_web\nshop-prod_stagecraft-edge\n",
    )
    for host in (leader, worker):
        host.expect(re.compile(r"^test -d .*/releases$"), returncode=0)
    edge = Edge.__new__(Edge)  # never asked: a swarm's proxy is a service of the stack
    plan = plan_removal([leader, worker], "shop", "prod", edge, swarm_leader="m1")
    text = render_removal(plan)
    assert "stack services (on every node): stagecraft-edge, web" in text
    assert [h.containers for h in plan.hosts] == [(), ()]

    leader.expect("docker stack rm shop-prod")
    leader.expect(re.compile(r"docker secret ls -q --filter \"label=stagecraft.stack=\$1\""))
    for host in (leader, worker):
        host.expect(re.compile(r"docker ps -a --filter .*namespace=shop-prod"))
        host.expect(re.compile(r"^rm -rf .*/releases$"))
        host.expect(re.compile(r"ledger\.jsonl"))  # the remove record
    config = StagecraftConfig.model_validate({"project": "shop"})
    release = new_release(config, "prod", Version("x"))
    result = remove([leader, worker], plan, release, edge)
    assert result.ok
    assert leader.commands.index("docker stack rm shop-prod") < leader.commands.index(
        next(c for c in leader.commands if c.startswith("rm -rf"))
    )


def test_tasks_on_a_node_that_is_down_count_for_nothing() -> None:
    leader = FakeSSHHost("web-1")
    stale = _task("web", "h2", "running")  # on node-1: its last known state
    answer = _answer([_service("web", "h2", replicas=1)], [stale])
    leader.expect(READ, stdout=answer + "#nodes\nnode-1 Down\nnode-2 Ready\n")
    web = read_stack(leader, "fleet-production")["web"]
    assert web.tasks == () and not web.converged()

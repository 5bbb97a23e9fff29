"""The large project of ``bench/plan_large.py`` plans to exactly the actions it is built for.

No timing here (the bench prints figures): this checks that the bench measures what
it says -- 300 services on 30 hosts, 60 per host, cross-host wiring, and per host
9 create, 6 + 3 replace (image, config), 42 keep and 2 remove.
"""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from stagecraft.deploy.plan import DeployPlan, make_plan
from stagecraft.deploy.release import Version, new_release
from stagecraft.deploy.render import RenderedHost, render_hosts

BENCH = Path(__file__).resolve().parents[3] / "bench" / "plan_large.py"
HOSTS = 30
PER_HOST = 60  # 2 roles of 30 services


def _bench() -> ModuleType:
    """``bench/plan_large.py`` imported as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("plan_large", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, RenderedHost], Any]:
    bench = _bench()
    config = bench.write_project(tmp_path_factory.mktemp("large"), bench.Scenario(), git=False)
    loaded, model = bench.load(config)
    release = new_release(loaded.config, bench.ENV, Version("0123456789ab"))
    desired = render_hosts(loaded, bench.ENV, release, compose=model)
    plan = make_plan(release, desired, bench.actual_states(desired))
    return desired, plan


def test_every_host_gets_its_two_roles(planned: tuple[dict[str, RenderedHost], Any]) -> None:
    desired, _ = planned
    assert len(desired) == HOSTS
    assert {len(host.services) for host in desired.values()} == {PER_HOST}
    all_services = {name for host in desired.values() for name in host.services}
    assert len(all_services) == 300
    kinds = Counter(s.kind for host in desired.values() for s in host.services.values())
    # per host and role: 3 routed web services, 1 accessory, 26 workers
    assert kinds == {"web": HOSTS * 2 * 3, "accessory": HOSTS * 2, "worker": HOSTS * 2 * 26}


def test_workers_reach_another_roles_accessory_across_hosts(
    planned: tuple[dict[str, RenderedHost], Any],
) -> None:
    desired, _ = planned
    # h00 has roles r0 and r3; svc005 (r0) depends on svc059, r1's accessory, whose first
    # host in config order is h01 (roles r1, r4) at 10.20.0.11.
    worker = desired["h00"].services["svc005"].definition
    assert worker["extra_hosts"] == ["svc059:10.20.0.11"]
    assert worker["depends_on"] == {"svc004": {"condition": "service_started", "required": True}}
    accessory = desired["h01"].services["svc059"].definition
    assert accessory["ports"] == [
        {"target": 5432, "published": "5432", "host_ip": "10.20.0.11", "protocol": "tcp",
         "mode": "host"}
    ]  # fmt: skip


def test_plan_counts_are_the_ones_the_states_were_built_for(
    planned: tuple[dict[str, RenderedHost], Any],
) -> None:
    plan: DeployPlan = planned[1]
    # per host, of every 20 placed services: 3 create, 2 image + 1 config replace, 14 keep
    per_host = {"create": 9, "replace": 9, "keep": 42, "remove": 2}
    assert plan.counts() == {action: n * HOSTS for action, n in per_host.items()}
    assert plan.unreachable == ()
    changes = Counter(s.changes for host in plan.hosts for s in host.services)
    assert changes[("image",)] == 6 * HOSTS and changes[("config",)] == 3 * HOSTS
    removed = {s.service for host in plan.hosts for s in host.services if s.action == "remove"}
    assert removed == {"retired0", "retired1"}
    # the exited container of an older release is not counted as running
    kept = [s for host in plan.hosts for s in host.services if s.action == "keep"]
    assert {s.containers for s in kept} == {1}

"""The deploy plan from rendered hosts and fake host states: every action kind."""

from __future__ import annotations

import json

from model_helpers import TextGolden, fleet_release, load_fleet
from syrupy.assertion import SnapshotAssertion

from stagecraft.deploy.plan import MigrationPlan, make_plan, render_text
from stagecraft.deploy.render import RenderedHost, render_hosts
from stagecraft.deploy.state.containers import ContainerState, HostState, parse_inspect
from stagecraft.errors import HostUnreachable


def _container(
    rendered: RenderedHost, service: str, *, image: str | None = None, digest: str | None = None
) -> ContainerState:
    spec = rendered.services[service]
    return ContainerState(
        id=f"{service}0000000000000",
        name=f"fleet-production-{service}-1",
        service=service,
        release="20261001T000000Z-old000000000",
        version="old000000000",
        image=image or spec.image,
        image_id="sha256:1",
        config_hash=digest or spec.config_hash,
        kind=spec.kind,
        state="running",
        health=None,
        started_at="2026-10-01T00:00:00Z",
    )


def _scenario() -> tuple[dict[str, RenderedHost], dict[str, HostState | BaseException]]:
    loaded = load_fleet()
    desired = render_hosts(loaded, "production", fleet_release(loaded))
    web1, data = desired["web-1"], desired["data-1"]
    stale = _container(web1, "web", image="fleet/web:old000000000")
    retired = ContainerState(**{**_container(data, "db").__dict__, "service": "cache"})
    actual: dict[str, HostState | BaseException] = {
        "web-1": HostState("web-1", (stale,)),
        "web-2": HostUnreachable("web-2", "connection refused"),
        "data-1": HostState(
            "data-1",
            (_container(data, "db"), _container(data, "worker", digest="sha256:old"), retired),
        ),
    }
    return desired, actual


def test_each_action_kind() -> None:
    desired, actual = _scenario()
    plan = make_plan(fleet_release(load_fleet()), desired, actual)
    by_host = {h.host: {s.service: (s.action, s.changes) for s in h.services} for h in plan.hosts}
    assert by_host == {
        "web-1": {"web": ("replace", ("image",))},
        "web-2": {},
        "data-1": {
            "cache": ("remove", ()),
            "db": ("keep", ()),
            "worker": ("replace", ("config",)),
        },
    }
    assert plan.hosts[1].error == "connection refused"
    assert [h.host for h in plan.unreachable] == ["web-2"]
    assert plan.counts() == {"create": 0, "replace": 2, "keep": 1, "remove": 1}


def test_empty_hosts_create_everything() -> None:
    loaded = load_fleet()
    desired = render_hosts(loaded, "production", fleet_release(loaded))
    empty = {name: HostState(name, ()) for name in desired}
    plan = make_plan(fleet_release(loaded), desired, empty)
    assert {s.action for h in plan.hosts for s in h.services} == {"create"}
    assert plan.changes == 4


def test_stopped_containers_do_not_count_as_deployed() -> None:
    loaded = load_fleet()
    desired = render_hosts(loaded, "production", fleet_release(loaded))
    exited = ContainerState(**{**_container(desired["web-1"], "web").__dict__, "state": "exited"})
    plan = make_plan(fleet_release(loaded), desired, {"web-1": HostState("web-1", (exited,))})
    assert plan.hosts[0].services[0].action == "create"
    assert plan.hosts[1].error == "state not read"


def test_text_and_json_are_deterministic(snapshot: SnapshotAssertion) -> None:
    desired, actual = _scenario()
    migrations = [
        MigrationPlan("main", ("0001_init.sql",)),
        MigrationPlan("audit", None, "database not reachable"),
    ]
    plan = make_plan(fleet_release(load_fleet()), desired, actual, migrations)
    again = make_plan(fleet_release(load_fleet()), desired, actual, list(reversed(migrations)))
    assert render_text(plan) == render_text(again)
    assert json.dumps(plan.to_json()) == json.dumps(again.to_json())
    assert render_text(plan) == snapshot(extension_class=TextGolden)
    data = plan.to_json()
    assert data["migrations"][0] == {
        "database": "audit",
        "status": "unknown",
        "pending": None,
        "reason": "database not reachable",
    }
    assert data["hosts"][1] == {
        "host": "web-2",
        "address": "10.0.0.12",
        "reachable": False,
        "error": "connection refused",
        "services": [],
    }


def test_parse_inspect_reads_labels_state_and_health() -> None:
    text = json.dumps(
        [
            {
                "Id": "abc123def4567890",
                "Name": "/fleet-production-web-1",
                "Image": "sha256:feed",
                "Config": {
                    "Image": "fleet/web:v2",
                    "Labels": {
                        "stagecraft.service": "web",
                        "stagecraft.release": "20261123T000000Z-v2",
                        "stagecraft.version": "v2",
                        "stagecraft.config-hash": "sha256:x",
                        "stagecraft.kind": "web",
                    },
                },
                "State": {
                    "Status": "running",
                    "Health": {"Status": "healthy"},
                    "StartedAt": "2026-11-23T00:00:01Z",
                },
            },
            {
                "Id": "0ld",
                "Name": "/fleet-production-web-0",
                "Image": "sha256:old",
                "Config": {"Image": "fleet/web:v1", "Labels": {"stagecraft.service": "web"}},
                "State": {"Status": "exited", "StartedAt": "0001-01-01T00:00:00Z"},
            },
        ]
    )
    state = parse_inspect("web-1", text)
    (newest, old) = state.services["web"]
    assert (newest.version, newest.health, newest.running) == ("v2", "healthy", True)
    assert (old.running, old.started_at, old.release) == (False, None, None)
    assert state.running("web") == (newest,)
    assert parse_inspect("web-1", "[]").services == {}

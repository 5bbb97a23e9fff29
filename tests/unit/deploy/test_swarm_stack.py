"""The Swarm stack file (``driver: swarm``): golden files for the fleet example and its rules.

The fleet example is copied and given ``driver: swarm``; secrets get fixed
values and the digest key is fixed, so the versioned secret names are stable.
"""

from __future__ import annotations

import doctest
import io
import logging
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest
from model_helpers import KEY, VALUES, Edit, YamlGolden, fleet_release, swarm_fleet
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from stagecraft.config.loader import LoadedConfig
from stagecraft.deploy.render import RenderError
from stagecraft.deploy.swarm import stack as stack_module
from stagecraft.deploy.swarm.stack import (
    EDGE_SERVICE,
    STACK_FILE,
    UNRESOLVED,
    Stack,
    network_name,
    render_stack,
    stack_name,
    swarm_object_name,
    upstream_host,
)

CANARY = "canary-sw4rm-s3cr3t-91c4"


class JsonGolden(SingleFileSnapshotExtension):
    """One readable ``.json`` golden file per snapshot."""

    _write_mode = WriteMode.TEXT
    file_extension = "json"


def render(loaded: LoadedConfig, values: dict[str, str] | None = None, **options: bool) -> Stack:
    return render_stack(
        loaded,
        "production",
        fleet_release(loaded),
        secrets=VALUES if values is None else values,
        key=KEY,
        **options,
    )


def refusal(tmp_path: Path, *, config: Iterable[Edit] = (), compose: Iterable[Edit] = ()) -> str:
    """The message and hint of the RenderError the edited fleet stack raises."""
    loaded = swarm_fleet(tmp_path, config=config, compose=compose)
    with pytest.raises(RenderError) as info:
        render(loaded)
    assert info.value.hint, "every refusal says how to fix it"
    return f"{info.value.message}\nhint: {info.value.hint}"


# --- golden files ------------------------------------------------------------


def test_fleet_stack_golden(tmp_path: Path, snapshot: SnapshotAssertion) -> None:
    stack = render(swarm_fleet(tmp_path))
    assert stack.text() == snapshot(extension_class=YamlGolden)


def test_fleet_stack_golden_with_ipvs(tmp_path: Path, snapshot: SnapshotAssertion) -> None:
    stack = render(swarm_fleet(tmp_path), ipvs=True)
    assert "endpoint_mode" not in stack.text()
    assert stack.text() == snapshot(extension_class=YamlGolden)


def test_edge_config_golden(tmp_path: Path, snapshot: SnapshotAssertion) -> None:
    stack = render(swarm_fleet(tmp_path))
    assert list(stack.files) == ["edge-config.json"]
    assert stack.files["edge-config.json"] == snapshot(extension_class=JsonGolden)


def test_docker_stack_config_accepts_the_stack_file(tmp_path: Path) -> None:
    """The real CLI's 3.8 schema (no swarm needed): what `docker stack deploy` validates."""
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI")
    loaded = swarm_fleet(
        tmp_path,
        compose=[
            (
                "    stop_grace_period: 5s\n",
                "    stop_grace_period: 5s\n"
                "    extra_hosts: ['metrics:10.0.0.99']\n"
                "    ulimits: {nofile: {soft: 1024, hard: 2048}}\n"
                "    networks: [default, jobs]\n"
                "    deploy:\n"
                "      resources: {limits: {cpus: '0.5', memory: 256M}}\n",
            ),
            ("volumes:\n  dbdata:\n", "volumes:\n  dbdata:\nnetworks:\n  jobs:\n"),
        ],
    )
    stack = render(loaded)
    directory = tmp_path / "release"
    directory.mkdir()
    (directory / STACK_FILE).write_text(stack.text())
    for name, content in stack.files.items():
        (directory / name).write_text(content)
    result = subprocess.run(
        ["docker", "stack", "config", "-c", STACK_FILE],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
    )
    if "is not a docker command" in result.stderr or "unknown command" in result.stderr:
        pytest.skip("this docker CLI has no `docker stack config`")
    assert result.returncode == 0, result.stderr
    assert 'cpus: "0.5"' in result.stdout or "cpus: '0.5'" in result.stdout
    assert "metrics:10.0.0.99" in result.stdout or "10.0.0.99 metrics" in result.stdout


# --- names ------------------------------------------------------------------


def test_names() -> None:
    assert stack_name("fleet", "production") == "fleet-production"
    assert network_name("fleet", "production") == "stagecraft_fleet_production"
    assert upstream_host("fleet-production", "web") == "fleet-production_web"


def test_doctests() -> None:
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    out = io.StringIO()
    for test in finder.find(stack_module, stack_module.__name__):
        runner.run(test, out=out.write)
    assert runner.summarize(verbose=False).failed == 0, out.getvalue()


def test_long_names_are_cut_to_64_characters_keeping_the_digest() -> None:
    long = swarm_object_name("p" * 40 + "_" + "s" * 30 + "_" + "V" * 40, "0123456789ab")
    other = swarm_object_name("p" * 40 + "_" + "s" * 30 + "_" + "W" * 40, "0123456789ab")
    assert len(long) == 64 and long.endswith("_0123456789ab")
    assert long != other  # same first characters, different names


# --- secrets ----------------------------------------------------------------


def test_secret_values_never_reach_the_stack_file(tmp_path: Path) -> None:
    values = {"POSTGRES_PASSWORD": CANARY, "DATABASE_URL": f"postgres://fleet:{CANARY}@db/x"}
    stack = render(swarm_fleet(tmp_path), values)
    assert CANARY not in stack.text()
    assert all(CANARY not in content for content in stack.files.values())
    assert CANARY not in repr(stack)
    found = stack.secret_values(values)
    db = stack.document["secrets"]["db_postgres_password"]["name"]
    assert found[db] == CANARY
    assert stack.secret_refs[db] == ("db", "POSTGRES_PASSWORD")
    web = stack.document["secrets"]["web_database_url"]["name"]
    assert found[web] == f"postgres://fleet:{CANARY}@db/x"
    assert set(found) == set(stack.secret_refs)


def test_a_secret_variable_is_a_file_named_by_VAR_FILE(tmp_path: Path) -> None:
    stack = render(swarm_fleet(tmp_path))
    db = stack.services["db"]
    assert db.secrets == ("POSTGRES_PASSWORD",)
    env = db.definition["environment"]
    assert env["POSTGRES_PASSWORD_FILE"] == "/run/secrets/POSTGRES_PASSWORD"
    assert "POSTGRES_PASSWORD" not in env
    assert db.definition["secrets"] == [
        {"source": "db_postgres_password", "target": "POSTGRES_PASSWORD"}
    ]
    name = stack.document["secrets"]["db_postgres_password"]["name"]
    assert stack.document["secrets"]["db_postgres_password"]["external"] is True
    assert name.startswith("fleet-production_db_POSTGRES_PASSWORD_")


def test_a_rotated_secret_gets_a_new_name_and_replaces_only_its_users(tmp_path: Path) -> None:
    loaded = swarm_fleet(tmp_path)
    one = render(loaded)
    two = render(loaded, {**VALUES, "POSTGRES_PASSWORD": "rotated-password"})
    key = "db_postgres_password"
    assert one.document["secrets"][key]["name"] != two.document["secrets"][key]["name"]
    assert one.services["db"].config_hash != two.services["db"].config_hash
    assert one.services["web"].config_hash == two.services["web"].config_hash
    again = render(loaded)
    assert again.document == one.document  # same values, same names: deterministic


def test_without_values_secret_names_are_unresolved(tmp_path: Path) -> None:
    loaded = swarm_fleet(tmp_path)
    stack = render_stack(loaded, "production", fleet_release(loaded))
    names = [s["name"] for s in stack.document["secrets"].values()]
    assert names and all(n.endswith("_" + UNRESOLVED) for n in names)


def test_a_missing_secret_value_is_named(tmp_path: Path) -> None:
    loaded = swarm_fleet(tmp_path)
    with pytest.raises(RenderError, match="no value for secret POSTGRES_PASSWORD"):
        render(loaded, {"DATABASE_URL": "x"})
    stack = render(loaded)
    with pytest.raises(RenderError, match="service db: POSTGRES_PASSWORD: no value"):
        stack.secret_values({"DATABASE_URL": "x"})


def test_secret_names_stay_within_64_characters(tmp_path: Path) -> None:
    var = "A_VERY_LONG_SECRET_VARIABLE_NAME_FOR_THE_DATABASE_CONNECTION_URL"
    service = "a-rather-long-web-service-name"
    loaded = swarm_fleet(
        tmp_path,
        config=[
            ("project: fleet", "project: a-long-project-name-for-the-fleet"),
            ("secrets: [POSTGRES_PASSWORD, DATABASE_URL]", f"secrets: [POSTGRES_PASSWORD, {var}]"),
            ("web: [web]", f"web: [{service}]"),
            ("service: web,", f"service: {service},"),
        ],
        compose=[
            ("  web:\n", f"  {service}:\n"),
            (
                "      DATABASE_URL:\n",
                f"      DATABASE_URL: ${{{var}}}\n",
            ),
        ],
    )
    values = {"POSTGRES_PASSWORD": "pw", var: "postgres://x"}
    release = fleet_release(loaded)
    stack = render_stack(loaded, "production", release, secrets=values, key=KEY)
    names = list(stack.secret_refs)
    assert len(names) == 2 and all(len(n) <= 64 for n in names)
    assert set(stack.secret_refs.values()) == {
        ("db", "POSTGRES_PASSWORD"),
        (service, "DATABASE_URL"),
    }
    assert {s["name"] for s in stack.document["secrets"].values()} == set(names)
    assert len(stack.document["configs"]["edge_config"]["name"]) <= 64


def test_a_secret_outside_environment_is_refused(tmp_path: Path) -> None:
    text = refusal(
        tmp_path,
        compose=[("    init: true\n", "    init: true\n    command: [serve, '${DATABASE_URL}']\n")],
    )
    assert "service web: command.1 uses secret DATABASE_URL" in text
    assert "environment" in text


def test_a_VAR_FILE_already_set_is_refused(tmp_path: Path) -> None:
    text = refusal(
        tmp_path, compose=[("      POSTGRES_USER: fleet\n", "      POSTGRES_PASSWORD_FILE: /x\n")]
    )
    assert "service db" in text and "POSTGRES_PASSWORD_FILE is already set" in text


# --- placement, replicas, updates --------------------------------------------


def test_placement_and_replicas(tmp_path: Path) -> None:
    stack = render(swarm_fleet(tmp_path))
    assert sorted(stack.services) == ["db", "web", "worker"]
    assert {n: s.replicas for n, s in stack.services.items()} == {"db": 1, "web": 2, "worker": 1}
    assert stack.placement() == {"db": "data", "web": "web", "worker": "jobs", EDGE_SERVICE: ""}
    web = stack.services["web"].definition["deploy"]
    assert web["placement"]["constraints"] == ["node.labels.stagecraft.role.web==true"]
    assert web["endpoint_mode"] == "dnsrr"
    assert stack.images() == {
        "db": "postgres:16-alpine",
        "web": "fleet/web:0123456789ab",
        "worker": "fleet/worker:0123456789ab",
        EDGE_SERVICE: "caddy:2",
    }


def test_explicit_replicas_and_user_constraints_are_kept(tmp_path: Path) -> None:
    loaded = swarm_fleet(
        tmp_path,
        compose=[
            (
                "    stop_grace_period: 5s\n",
                "    stop_grace_period: 5s\n"
                "    deploy:\n"
                "      replicas: 4\n"
                "      placement: {constraints: ['node.platform.arch==x86_64']}\n"
                "      restart_policy: {condition: on-failure}\n",
            )
        ],
    )
    worker = render(loaded).services["worker"]
    assert worker.replicas == 4
    deploy = worker.definition["deploy"]
    assert deploy["replicas"] == 4
    assert deploy["placement"]["constraints"] == [
        "node.labels.stagecraft.role.jobs==true",
        "node.platform.arch==x86_64",
    ]
    assert deploy["restart_policy"] == {"condition": "on-failure"}


def test_update_order_start_first_but_stop_first_for_the_database(tmp_path: Path) -> None:
    stack = render(swarm_fleet(tmp_path))
    web = stack.services["web"].definition["deploy"]
    db = stack.services["db"].definition["deploy"]
    assert web["update_config"] == {
        "parallelism": 1,
        "delay": "0s",
        "order": "start-first",
        "failure_action": "rollback",
        "monitor": "5s",
    }
    assert web["rollback_config"] == {"parallelism": 1, "order": "start-first", "monitor": "5s"}
    assert db["update_config"]["order"] == db["rollback_config"]["order"] == "stop-first"
    assert web["restart_policy"] == {"condition": "any", "delay": "1s"}


def test_web_gets_a_healthcheck_and_a_grace_period_from_x_stagecraft(tmp_path: Path) -> None:
    web = render(swarm_fleet(tmp_path)).services["web"].definition
    url = "http://127.0.0.1:8080/healthz/"
    assert web["healthcheck"]["test"] == [
        "CMD-SHELL",
        f"wget -q -O /dev/null {url} || curl -fsS -o /dev/null {url}",
    ]
    assert (web["healthcheck"]["interval"], web["healthcheck"]["timeout"]) == ("1s", "3s")
    assert web["healthcheck"]["retries"] == 3
    assert web["stop_grace_period"] == "12s"  # drain 2s + 10s
    assert "ports" not in web and "depends_on" not in web and "build" not in web
    assert web["networks"] == {"default": None}


def test_labels_on_service_and_containers(tmp_path: Path) -> None:
    loaded = swarm_fleet(
        tmp_path,
        compose=[
            ("    init: true\n", "    init: true\n    labels: {team: web, stagecraft.x: y}\n")
        ],
    )
    web = render(loaded).services["web"]
    deploy_labels = web.definition["deploy"]["labels"]
    assert deploy_labels["stagecraft.release"] == "20261123T101500Z-0123456789ab"
    assert deploy_labels["stagecraft.config-hash"] == web.config_hash
    container = web.definition["labels"]
    assert container["team"] == "web" and "stagecraft.x" not in container
    # A release id on the containers would replace every task (the database too) each deploy.
    assert "stagecraft.release" not in container and "stagecraft.version" not in container
    assert container["stagecraft.config-hash"] == web.config_hash


def test_config_hash_follows_the_image_id_not_the_version(tmp_path: Path) -> None:
    loaded = swarm_fleet(tmp_path)
    first, second = fleet_release(loaded), fleet_release(loaded, "bbbbbbbbbbbb")
    same = {  # a new version whose images did not change: same IDs under new tags
        f"fleet/{name}:{version}": f"sha256:{name[0] * 64}"
        for name in ("web", "worker")
        for version in ("0123456789ab", "bbbbbbbbbbbb")
    }
    one = render_stack(loaded, "production", first, secrets=VALUES, key=KEY, image_ids=same)
    two = render_stack(loaded, "production", second, secrets=VALUES, key=KEY, image_ids=same)
    for name, service in one.services.items():
        assert service.config_hash == two.services[name].config_hash
    assert two.services["web"].image == "fleet/web:bbbbbbbbbbbb"
    by_tag = render_stack(loaded, "production", second, secrets=VALUES, key=KEY)
    assert by_tag.services["web"].config_hash != two.services["web"].config_hash


def test_edge_service(tmp_path: Path) -> None:
    stack = render(swarm_fleet(tmp_path))
    edge = stack.document["services"][EDGE_SERVICE]
    assert edge["deploy"]["mode"] == "global"
    assert edge["deploy"]["placement"]["constraints"] == ["node.labels.stagecraft.edge==true"]
    assert edge["deploy"]["update_config"]["order"] == "stop-first"
    assert edge["deploy"]["labels"]["stagecraft.kind"] == "edge"
    assert {p["published"] for p in edge["ports"]} == {80, 443}
    assert all(p["mode"] == "host" for p in edge["ports"])
    config = stack.document["configs"]["edge_config"]
    assert config["file"] == "./edge-config.json"
    assert config["name"].startswith("fleet-production_edge_")
    assert '"name": "fleet-production_web"' in stack.files["edge-config.json"]
    assert edge["volumes"] == ["edge_data:/data"] and "edge_data" in stack.document["volumes"]


def test_no_routes_no_edge(tmp_path: Path) -> None:
    loaded = swarm_fleet(
        tmp_path,
        config=[
            (
                "    routes:\n"
                '      web: {host: "${FLEET_DOMAIN:-fleet.example.com}", '
                "service: web, port: 8080}\n",
                "",
            )
        ],
        compose=[("      kind: web\n", "      kind: worker\n")],
    )
    stack = render(loaded)
    assert EDGE_SERVICE not in stack.document["services"]
    assert "configs" not in stack.document and stack.files == {}


def test_dollars_are_written_for_stack_interpolation(tmp_path: Path) -> None:
    """`docker stack deploy` interpolates: a literal $ is $$, as in Compose's own output."""
    loaded = swarm_fleet(
        tmp_path,
        config=[("LOG_LEVEL: info", "LOG_LEVEL: 'a$$b'")],  # stagecraft.yml's $$: a$b
        compose=[
            ('      DB_PORT: "5432"\n', '      DB_PORT: "5432"\n      PRICE: $$5\n'),
            ("      DATABASE_URL:\n", "      DATABASE_URL: 'pg://u:${POSTGRES_PASSWORD}@db/$$x'\n"),
        ],
    )
    values = {**VALUES, "POSTGRES_PASSWORD": "p$w"}
    stack = render(loaded, values)
    environment = stack.services["web"].definition["environment"]
    assert (environment["LOG_LEVEL"], environment["PRICE"]) == ("a$$b", "$$5")
    assert "LOG_LEVEL: a$$b" in stack.text() and "PRICE: $$5" in stack.text()
    name = stack.document["secrets"]["web_database_url"]["name"]
    assert stack.secret_values(values)[name] == "pg://u:p$w@db/$x"  # a file: not interpolated


def test_unexpected_dropped_settings_are_one_warning_per_service(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    loaded = swarm_fleet(
        tmp_path,
        compose=[
            (
                "    stop_grace_period: 5s\n",
                "    stop_grace_period: 5s\n    privileged: true\n    pid: host\n",
            )
        ],
    )
    with caplog.at_level(logging.WARNING, logger="stagecraft"):
        stack = render(loaded)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("service worker: pid, privileged not deployed to production")
    assert "privileged" not in stack.services["worker"].definition


def test_dev_bind_mounts_are_dropped(tmp_path: Path) -> None:
    loaded = swarm_fleet(
        tmp_path,
        compose=[
            (
                "    stop_grace_period: 5s\n",
                "    stop_grace_period: 5s\n"
                "    volumes: ['./worker:/src', '/etc/ssl:/etc/ssl:ro']\n",
            )
        ],
    )
    volumes = render(loaded).services["worker"].definition["volumes"]
    assert [v["target"] for v in volumes] == ["/etc/ssl"]


# --- refusals -----------------------------------------------------------------


def test_web_without_healthcheck_is_refused(tmp_path: Path) -> None:
    text = refusal(
        tmp_path,
        compose=[
            ("      healthcheck: {path: /healthz/, port: 8080, interval: 1s, timeout: 3s}\n", "")
        ],
    )
    assert "environment production: web service web has no healthcheck" in text
    assert "only once it is healthy" in text and "x-stagecraft.healthcheck" in text


def test_service_in_two_roles_is_refused(tmp_path: Path) -> None:
    text = refusal(tmp_path, config=[("jobs: [worker]", "jobs: [worker, web]")])
    assert "service web is in roles web, jobs" in text
    assert "exactly one role" in text and "hint: put web in one role" in text


def test_volume_service_on_a_multi_host_role_is_refused(tmp_path: Path) -> None:
    text = refusal(
        tmp_path,
        config=[
            (
                'web-2:  {address: "${FLEET_WEB2_ADDRESS:-10.0.0.12}", roles: [web]}',
                'web-2:  {address: "${FLEET_WEB2_ADDRESS:-10.0.0.12}", roles: [web, data]}',
            ),
        ],
    )
    assert "service db has a named volume (dbdata) but its role data has 2 hosts" in text
    assert "must run on exactly one host on Swarm" in text


def test_named_volume_with_replicas_is_refused(tmp_path: Path) -> None:
    text = refusal(
        tmp_path,
        compose=[
            (
                "    volumes: [dbdata:/var/lib/postgresql/data]\n",
                "    volumes: [dbdata:/var/lib/postgresql/data]\n    deploy: {replicas: 2}\n",
            )
        ],
    )
    assert "service db has a named volume (dbdata) and 2 replicas" in text


def test_route_to_an_unplaced_service_is_refused(tmp_path: Path) -> None:
    # The web role places web, but no host has that role any more.
    text = refusal(
        tmp_path,
        config=[
            ("roles: [web]}\n      web-2", "roles: [jobs]}\n      web-2"),
            (
                'web-2:  {address: "${FLEET_WEB2_ADDRESS:-10.0.0.12}", roles: [web]}',
                'web-2:  {address: "${FLEET_WEB2_ADDRESS:-10.0.0.12}", roles: [jobs]}',
            ),
        ],
    )
    assert "route web goes to service web, which no host's roles place" in text


def test_service_without_image_is_refused(tmp_path: Path) -> None:
    loaded = swarm_fleet(tmp_path)
    with pytest.raises(RenderError, match="service web has neither image: nor build:") as info:
        render_stack(
            loaded, "production", fleet_release(loaded), built=set(), secrets=VALUES, key=KEY
        )
    assert info.value.hint == "give service web an image: (or a build: section)"


def test_config_hashes_cover_the_edge_and_follow_the_image_ids(tmp_path: Path) -> None:
    loaded = swarm_fleet(tmp_path)
    plain = render(loaded)
    hashes = plain.config_hashes()
    assert set(hashes) == {"db", "web", "worker", EDGE_SERVICE}
    edge = plain.document["services"][EDGE_SERVICE]
    assert hashes[EDGE_SERVICE] == edge["labels"]["stagecraft.config-hash"]
    ids = {"postgres:16-alpine": "sha256:" + "1" * 64}
    one = render_stack(
        loaded, "production", fleet_release(loaded), secrets=VALUES, key=KEY, image_ids=ids
    )
    rebuilt = {"postgres:16-alpine": "sha256:" + "2" * 64}
    two = render_stack(
        loaded, "production", fleet_release(loaded), secrets=VALUES, key=KEY, image_ids=rebuilt
    )
    # The same tag with other content changes the containers' label: Swarm replaces the tasks.
    assert one.services["db"].config_hash != two.services["db"].config_hash
    db = two.services["db"].definition
    assert db["labels"]["stagecraft.config-hash"] == two.services["db"].config_hash
    # Named by ID, so no node tries a registry; the tag stays in a service label.
    assert db["image"] == "sha256:" + "2" * 64
    assert db["deploy"]["labels"]["stagecraft.image"] == "postgres:16-alpine"
    assert two.images()["db"] == "postgres:16-alpine"
    assert one.services["web"].config_hash == two.services["web"].config_hash == hashes["web"]

"""Secrets and the rendered compose file: a canary in every place a value can hide.

The rendered ``docker-compose.yml`` is world-readable on every host (0644), so
no secret value may reach it: not through ``environment``, not interpolated
inside another value, not from a local ``env_file:`` or ``.env``, not from the
shell of whoever deploys, not through build args, labels or a command. A
rotated secret must replace the services that use it, and ``plan`` says which
secret changed without showing any value (issue 9 items 1 and 2).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from model_helpers import fleet_release

from stagecraft.config.loader import LoadedConfig, load_project
from stagecraft.deploy import secret_digest
from stagecraft.deploy.plan import make_plan, render_text
from stagecraft.deploy.render import (
    RenderedHost,
    RenderError,
    check_no_secret_values,
    env_file_values,
    render_hosts,
)
from stagecraft.deploy.state.containers import ContainerState, HostState

CANARY = "canary-9f7c1e5b2a"
LOCAL = "local-only-4d2b8e"

CONFIG = """\
project: fleet
environments:
  production:
    hosts:
      web-1: {address: 10.0.0.11, roles: [web]}
    roles: {web: [api]}
    env: {LOG_LEVEL: info}
    secrets: [POSTGRES_PASSWORD, STRIPE_KEY]
    secrets_provider: {provider: env}
"""


def _project(tmp_path: Path, service: str, **files: str) -> LoadedConfig:
    """A project whose one service ``api`` is ``service`` (YAML lines under ``api:``)."""
    (tmp_path / "stagecraft.yml").write_text(CONFIG)
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n  api:\n    image: busybox:1.36\n" + service
    )
    for name, text in files.items():
        (tmp_path / name.replace("_", ".")).write_text(text)
    environ = {
        **os.environ,
        "POSTGRES_PASSWORD": CANARY,
        "STRIPE_KEY": CANARY + "-stripe",
        "LOCAL_ONLY": LOCAL,
    }
    return load_project(tmp_path / "stagecraft.yml", environ=environ)


def _render(loaded: LoadedConfig, digests: dict[str, str] | None = None) -> str:
    rendered = render_hosts(
        loaded, "production", fleet_release(loaded), built=(), secret_digests=digests
    )
    return rendered["web-1"].text()


def test_a_secret_named_in_environment_goes_to_the_env_file_only(tmp_path: Path) -> None:
    loaded = _project(tmp_path, "    environment:\n      POSTGRES_PASSWORD:\n")
    rendered = render_hosts(loaded, "production", fleet_release(loaded), built=())
    api = rendered["web-1"].services["api"]
    assert CANARY not in rendered["web-1"].text()
    assert api.secrets == ("POSTGRES_PASSWORD",)
    assert api.definition["env_file"] == ["api.env"]
    assert "POSTGRES_PASSWORD" not in api.definition["environment"]
    assert env_file_values(api, {"POSTGRES_PASSWORD": CANARY}) == {"POSTGRES_PASSWORD": CANARY}


def test_a_secret_inside_another_value_moves_that_key_to_the_env_file(tmp_path: Path) -> None:
    service = (
        "    environment:\n"
        "      DATABASE_URL: postgres://app:${POSTGRES_PASSWORD}@db/app?x=${LOG_LEVEL}\n"
        "      PLAIN: plain\n"
    )
    loaded = _project(tmp_path, service)
    rendered = render_hosts(loaded, "production", fleet_release(loaded), built=())
    api = rendered["web-1"].services["api"]
    text = rendered["web-1"].text()
    assert CANARY not in text and "@@stagecraft-secret" not in text
    assert api.definition["environment"] == {"LOG_LEVEL": "info", "PLAIN": "plain"}
    assert env_file_values(api, {"POSTGRES_PASSWORD": CANARY}) == {
        "DATABASE_URL": f"postgres://app:{CANARY}@db/app?x=info"
    }


def test_the_local_shell_and_dotenv_are_not_seen(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = (
        "    environment:\n      FROM_SHELL: ${LOCAL_ONLY:-unset}\n      FROM_DOTENV: ${DOT}\n"
    )
    loaded = _project(tmp_path, service, _env=f"DOT={CANARY}\nLOCAL_ONLY={LOCAL}\n")
    with caplog.at_level("WARNING"):
        api = render_hosts(loaded, "production", fleet_release(loaded), built=())["web-1"]
    text = api.text()
    assert CANARY not in text and LOCAL not in text
    assert api.services["api"].definition["environment"]["FROM_SHELL"] == "unset"
    warned = [r.message for r in caplog.records if "compose variable DOT is not set" in r.message]
    assert len(warned) == 1 and "environments.production.env" in warned[0]


def test_a_local_env_file_is_not_deployed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    service = "    env_file: [local.env]\n"
    loaded = _project(tmp_path, service, local_env=f"FROM_FILE={CANARY}\n")
    with caplog.at_level("WARNING"):
        text = _render(loaded)
    assert CANARY not in text and "local.env" not in text and "FROM_FILE" not in text
    assert any("env_file" in r.message and "not deployed" in r.message for r in caplog.records)


def test_build_args_with_a_secret_never_reach_the_hosts_file(tmp_path: Path) -> None:
    service = "    build:\n      context: .\n      args: {TOKEN: '${POSTGRES_PASSWORD}'}\n"
    text = _render(_project(tmp_path, service))
    assert CANARY not in text and "TOKEN" not in text


@pytest.mark.parametrize(
    ("service", "where"),
    [
        ("    labels: {leak: '${POSTGRES_PASSWORD}'}\n", "labels.leak"),
        ("    command: [echo, 'pw=${POSTGRES_PASSWORD}']\n", "command.1"),
        ("    entrypoint: ['${STRIPE_KEY}']\n", "entrypoint.0"),
        ("    healthcheck: {test: [CMD, '${STRIPE_KEY}']}\n", "healthcheck.test.1"),
    ],
)
def test_a_secret_outside_environment_is_refused_naming_service_and_key(
    tmp_path: Path, service: str, where: str
) -> None:
    loaded = _project(tmp_path, service)
    with pytest.raises(RenderError) as caught:
        _render(loaded)
    message = caught.value.message
    assert f"service api: {where} uses secret" in message
    assert CANARY not in message and CANARY not in (caught.value.hint or "")


def test_a_secret_value_typed_in_clear_is_caught_before_writing() -> None:
    with pytest.raises(RenderError):
        check_no_secret_values(f"labels: {{x: {CANARY}}}", [CANARY], host="web-1")
    check_no_secret_values("labels: {x: abc}", ["abc", CANARY], host="web-1")  # too short to judge


def _running(rendered_text_labels: dict[str, str], image: str, config_hash: str) -> ContainerState:
    return ContainerState(
        id="c" * 12,
        name="fleet-production-api-1",
        service="api",
        release="20261001T000000Z-old000000000",
        version="old000000000",
        image=image,
        image_id="sha256:1",
        config_hash=config_hash,
        kind="worker",
        state="running",
        health=None,
        started_at=None,
        secret_digests=secret_digest.parse_label(rendered_text_labels.get(secret_digest.LABEL)),
    )


def test_a_rotated_secret_replaces_the_service_and_plan_names_it(tmp_path: Path) -> None:
    loaded = _project(tmp_path, "    environment:\n      STRIPE_KEY:\n      POSTGRES_PASSWORD:\n")
    release = fleet_release(loaded)
    key = secret_digest.throwaway_key()
    old = {"STRIPE_KEY": "sk_live_old", "POSTGRES_PASSWORD": CANARY}
    new = {**old, "STRIPE_KEY": "sk_live_new"}

    def rendered(values: dict[str, str]) -> dict[str, RenderedHost]:
        digests = secret_digest.digests(key, values)
        return render_hosts(loaded, "production", release, built=(), secret_digests=digests)

    api = rendered(old)["web-1"].services["api"]
    state = HostState("web-1", (_running(api.definition["labels"], api.image, api.config_hash),))
    same = make_plan(release, rendered(old), {"web-1": state})
    rotated = make_plan(release, rendered(new), {"web-1": state})
    assert same.hosts[0].services[0].action == "keep"
    plan = rotated.hosts[0].services[0]
    assert plan.action == "replace" and plan.changes == ("secret STRIPE_KEY changed",)
    shown = render_text(rotated) + json.dumps(rotated.to_json())
    assert "secret STRIPE_KEY changed" in shown
    for value in (*old.values(), *new.values()):
        assert value not in shown


def test_digests_are_keyed_never_a_plain_hash_of_the_value() -> None:
    value = "hunter2"
    one, two = secret_digest.throwaway_key(), secret_digest.throwaway_key()
    digest = secret_digest.digests(one, {"PW": value})["PW"]
    assert digest != secret_digest.digests(two, {"PW": value})["PW"]
    assert digest not in hashlib.sha256(value.encode()).hexdigest()
    assert digest not in hashlib.sha256(f"PW\0{value}".encode()).hexdigest()
    assert secret_digest.changed({"PW": digest}, {"PW": digest}) == ()
    assert secret_digest.changed({"PW": digest}, {}) == ("PW",)
    label = secret_digest.label_value({"B": "2", "A": "1"})
    assert label == "A=1,B=2" and secret_digest.parse_label(label) == {"A": "1", "B": "2"}


def test_without_the_secrets_values_plan_does_not_guess_a_change(tmp_path: Path) -> None:
    loaded = _project(tmp_path, "    environment:\n      STRIPE_KEY:\n")
    release = fleet_release(loaded)
    key = secret_digest.throwaway_key()
    known = secret_digest.digests(key, {"STRIPE_KEY": "sk_live_old"})
    deployed = render_hosts(loaded, "production", release, built=(), secret_digests=known)
    api = deployed["web-1"].services["api"]
    state = HostState("web-1", (_running(api.definition["labels"], api.image, api.config_hash),))
    unknown = render_hosts(loaded, "production", release, built=(), secret_digests=None)
    assert make_plan(release, unknown, {"web-1": state}).hosts[0].services[0].action == "keep"

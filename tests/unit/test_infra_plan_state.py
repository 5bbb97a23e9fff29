"""`infra up/down` logic: matching servers to hosts, the state file, the config merge."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from stagecraft.config.infra_state import (
    HostRecord,
    InfraState,
    InfraStateError,
    known_hosts_path,
    read_state,
    state_path,
    write_state,
)
from stagecraft.config.loader import load_config
from stagecraft.deploy.state.layout import environment_hosts
from stagecraft.errors import ConfigError, UsageError
from stagecraft.infra import host_keys
from stagecraft.infra.plan import plan_up, render_down, render_up
from stagecraft.providers.builtin.cloud_digitalocean import DigitalOceanCloud
from stagecraft.providers.cloud import CloudHost, Server, machine_tags

CONFIG = """\
project: shop
cloud: {provider: digitalocean, providers: {digitalocean: {region: fra1}}}
environments:
  staging:
    hosts:
      web-1: {roles: [web]}
      web-2: {roles: [web], port: 2222}
    roles: {web: [web]}
  fixed:
    hosts:
      a: {address: 192.0.2.7, roles: [web]}
    roles: {web: [web]}
"""


def _provider() -> DigitalOceanCloud:
    return DigitalOceanCloud(DigitalOceanCloud.Config.model_validate({"region": "fra1"}))


def _server(name: str, host: str, address: str | None = "203.0.113.5") -> Server:
    tags = machine_tags("shop", "staging", ["web"], host=host)
    return Server("7", name, "active", tags, address, "10.0.0.5")


def _hosts(*names: str) -> Sequence[CloudHost]:
    return [CloudHost(name, ("web",)) for name in names]


def test_existing_servers_are_kept_missing_ones_created_and_strangers_listed() -> None:
    existing = [_server("shop-staging-web-1", "web-1"), _server("shop-staging-old", "old")]
    plan = plan_up("shop", "staging", _provider(), _hosts("web-1", "web-2"), existing)

    assert [m.name for m in plan.create] == ["shop-staging-web-2"]
    assert [(k.machine.host, k.server.name) for k in plan.keep] == [("web-1", "shop-staging-web-1")]
    assert [s.name for s in plan.extra] == ["shop-staging-old"]
    assert [s.name for s in plan.servers] == ["shop-staging-web-1", "shop-staging-old"]
    shown = render_up(plan)
    assert "1 to create, 1 kept" in shown
    assert "create  web-2: shop-staging-web-2 (fra1 s-1vcpu-1gb ubuntu-24-04-x64)" in shown
    assert "extra   shop-staging-old" in shown and "`infra down` destroys it" in shown
    assert "2 to destroy" in render_down(plan)
    assert plan.to_json()["create"][0]["tags"][-1] == "stagecraft-host-web-2"


def test_a_second_up_with_everything_there_creates_nothing() -> None:
    existing = [_server("shop-staging-web-1", "web-1"), _server("shop-staging-web-2", "web-2")]
    plan = plan_up("shop", "staging", _provider(), _hosts("web-1", "web-2"), existing)
    assert plan.create == () and plan.extra == () and len(plan.keep) == 2
    empty = plan_up("shop", "staging", _provider(), _hosts("web-1"), [])
    assert render_down(empty) == "infra down staging (digitalocean): nothing to destroy"


def test_state_round_trips_and_fills_what_the_config_leaves_out(tmp_path: Path) -> None:
    (tmp_path / "stagecraft.yml").write_text(CONFIG)
    with pytest.raises(UsageError, match=r"web-1, web-2 have no address yet"):
        load_config(tmp_path / "stagecraft.yml").environment("staging")
    loaded = load_config(tmp_path / "stagecraft.yml")
    assert loaded.environment("staging", provisioned=False).hosts["web-1"].address is None

    state = InfraState(
        "staging",
        "digitalocean",
        {
            "web-1": HostRecord("11", "shop-staging-web-1", "203.0.113.10", "10.0.0.2"),
            "web-2": HostRecord("12", "shop-staging-web-2", "203.0.113.11"),
        },
    )
    path = write_state(tmp_path, state)
    assert path == state_path(tmp_path, "staging")
    assert path.read_text().startswith("# Written by `stagecraft infra up --env staging`")
    assert read_state(tmp_path, "staging") == state

    staging = load_config(tmp_path / "stagecraft.yml").environment("staging")
    assert staging.hosts["web-1"].address == "203.0.113.10"
    assert staging.hosts["web-1"].labels["private_address"] == "10.0.0.2"
    assert "private_address" not in staging.hosts["web-2"].labels
    assert staging.ssh.known_hosts == str(known_hosts_path(tmp_path, "staging"))
    hosts = environment_hosts(staging)
    assert [(h.target.address, h.target.port) for h in hosts] == [
        ("203.0.113.10", 22),
        ("203.0.113.11", 2222),
    ]
    assert hosts[0].options.known_hosts == known_hosts_path(tmp_path, "staging")


def test_an_address_in_stagecraft_yml_wins_over_the_state(tmp_path: Path) -> None:
    (tmp_path / "stagecraft.yml").write_text(
        CONFIG.replace("web-1: {roles: [web]}", "web-1: {address: 198.51.100.1, roles: [web]}")
    )
    write_state(
        tmp_path,
        InfraState("staging", "digitalocean", {"web-1": HostRecord("1", "s", "203.0.113.10")}),
    )
    staging = load_config(tmp_path / "stagecraft.yml").environment("staging", provisioned=False)
    assert staging.hosts["web-1"].address == "198.51.100.1"


def test_a_host_without_address_needs_a_cloud(tmp_path: Path) -> None:
    (tmp_path / "stagecraft.yml").write_text(
        "project: shop\nenvironments:\n  prod:\n    hosts: {a: {roles: [web]}}\n"
        "    roles: {web: [web]}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "stagecraft.yml")
    shown = str(caught.value)
    assert "stagecraft.yml:4: environments.prod.hosts.a.address: required key missing" in shown
    assert "`stagecraft infra up` creates the host" in shown


def test_a_broken_state_file_names_itself_and_the_fix(tmp_path: Path) -> None:
    path = state_path(tmp_path, "staging")
    path.parent.mkdir(parents=True)
    path.write_text("hosts: [1, 2]\n")
    with pytest.raises(InfraStateError) as caught:
        read_state(tmp_path, "staging")
    assert str(path) in caught.value.message
    assert caught.value.hint is not None and "infra up --env staging" in caught.value.hint


def test_known_hosts_lines_are_replaced_and_forgotten_per_address(tmp_path: Path) -> None:
    path = tmp_path / "kh"
    host_keys.record(path, "203.0.113.10", 22, ["203.0.113.10 ssh-ed25519 AAAAold"])
    host_keys.record(path, "203.0.113.11", 2222, ["[203.0.113.11]:2222 ssh-ed25519 AAAAb"])
    host_keys.record(path, "203.0.113.10", 22, ["203.0.113.10 ssh-ed25519 AAAAnew"])
    assert host_keys.recorded(path, "203.0.113.10", 22) == ["203.0.113.10 ssh-ed25519 AAAAnew"]
    assert host_keys.recorded(path, "203.0.113.11", 22) == []
    assert len(path.read_text().splitlines()) == 2
    host_keys.forget(path, "203.0.113.10", 22)
    assert host_keys.recorded(path, "203.0.113.11", 2222)
    host_keys.forget(path, "203.0.113.11", 2222)
    assert not path.exists()

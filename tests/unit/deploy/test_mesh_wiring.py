"""Cross-host wiring through the network provider's mesh (ADR 0012), without hosts.

With ``network:`` configured, the address a service on another host is reached
at is that host's mesh address from ``.stagecraft/network/<env>.yml``, never its
labels or public address; a host not recorded there is a RenderError saying to
run bootstrap. The state file round-trips and holds no secret.
"""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
from model_helpers import FLEET, example_environ, fleet_release

from stagecraft.config.loader import LoadedConfig, load_project
from stagecraft.config.network_state import (
    MeshRecord,
    NetworkState,
    network_state_path,
    read_network_state,
    write_network_state,
)
from stagecraft.deploy.mesh import AuthKey, MeshJoin
from stagecraft.deploy.render import RenderError, render_hosts
from stagecraft.providers.secrets import SecretsError, SecretValue

NETWORK = "network: {provider: tailscale, providers: {tailscale: {hostname_prefix: fleet-}}}\n"


def _fleet_on_mesh(tmp_path: Path) -> LoadedConfig:
    root = tmp_path / "fleet"
    shutil.copytree(FLEET, root)
    text = (root / "stagecraft.yml").read_text()
    (root / "stagecraft.yml").write_text(text + NETWORK)
    return load_project(
        root / "stagecraft.yml", environ=example_environ(FLEET_DATA1_ADDRESS="203.0.113.12")
    )


def _record(loaded: LoadedConfig, **addresses: str) -> None:
    hosts = {h: MeshRecord(f"fleet-{h}", a) for h, a in addresses.items()}
    write_network_state(loaded.root, NetworkState("production", "tailscale", hosts))


def test_wiring_uses_the_recorded_mesh_address_only(tmp_path: Path) -> None:
    loaded = _fleet_on_mesh(tmp_path)
    _record(loaded, **{"web-1": "100.64.0.1", "web-2": "100.64.0.2", "data-1": "100.64.0.3"})
    rendered = render_hosts(loaded, "production", fleet_release(loaded))
    assert rendered["web-1"].services["web"].definition["extra_hosts"] == ["db:100.64.0.3"]
    ports = rendered["data-1"].services["db"].definition["ports"]
    assert [(p["host_ip"], p["published"]) for p in ports] == [("100.64.0.3", "5432")]
    assert "203.0.113.12" not in rendered["data-1"].text()
    assert rendered["data-1"].address == "100.64.0.3"


def test_a_host_that_has_not_joined_is_a_render_error_naming_bootstrap(tmp_path: Path) -> None:
    loaded = _fleet_on_mesh(tmp_path)
    _record(loaded, **{"web-1": "100.64.0.1", "web-2": "100.64.0.2"})
    with pytest.raises(RenderError) as info:
        render_hosts(loaded, "production", fleet_release(loaded))
    assert (
        "host data-1 has not joined the tailscale mesh: "
        "run `stagecraft hosts bootstrap --env production`" in info.value.message
    )
    assert "service web on web-1 depends on db on data-1" in info.value.message


def test_no_state_file_or_another_providers_counts_as_not_joined(tmp_path: Path) -> None:
    loaded = _fleet_on_mesh(tmp_path)
    with pytest.raises(RenderError, match="has not joined the tailscale mesh"):
        render_hosts(loaded, "production", fleet_release(loaded))
    hosts = {"data-1": MeshRecord("x", "100.64.0.3")}
    write_network_state(loaded.root, NetworkState("production", "netbird", hosts))
    with pytest.raises(RenderError, match="data-1 has not joined"):
        render_hosts(loaded, "production", fleet_release(loaded))


def test_state_file_round_trips_world_readable(tmp_path: Path) -> None:
    state = NetworkState("staging", "tailscale", {"h1": MeshRecord("shop-h1", "100.64.0.3")})
    path = write_network_state(tmp_path, state)
    assert path == network_state_path(tmp_path, "staging")
    assert path == tmp_path / ".stagecraft" / "network" / "staging.yml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert read_network_state(tmp_path, "staging") == state
    assert read_network_state(tmp_path, "production") is None


def test_the_auth_key_is_resolved_once_and_a_failure_is_shared() -> None:
    calls: list[int] = []

    def resolve() -> SecretValue:
        calls.append(1)
        return SecretValue("tskey-auth-x", name="TS_AUTHKEY")

    key = AuthKey(resolve)
    assert key().reveal() == key().reveal() == "tskey-auth-x" and len(calls) == 1

    def missing() -> SecretValue:
        calls.append(1)
        raise SecretsError("1 secret not found by the env secrets provider: TS_AUTHKEY")

    failing = AuthKey(missing)
    for _ in range(2):
        with pytest.raises(SecretsError, match="TS_AUTHKEY"):
            failing()
    assert len(calls) == 2


def test_mesh_join_reports_joined_or_already_on() -> None:
    joined = MeshJoin("h1", "tailscale", "shop-h1", "100.64.0.3", joined=True)
    assert joined.describe() == "joined tailscale as shop-h1 (100.64.0.3)"
    again = MeshJoin("h1", "tailscale", "shop-h1", "100.64.0.3", joined=False)
    assert again.describe() == "already on tailscale as shop-h1 (100.64.0.3)"

"""Tailscale's status, address and ping commands and the parser of `tailscale status --json`.

The status documents are the shape of ``ipnstate.Status`` (ipn/ipnstate/ipnstate.go in
github.com/tailscale/tailscale) as ``tailscale status --json`` prints it: ``Peer``
keyed by node key, ``DNSName`` with its trailing dot, ``Tags`` only on tagged nodes,
``Peer: null`` when stopped or logged out.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from stagecraft.errors import ProviderError
from stagecraft.providers import registry
from stagecraft.providers.builtin.network_tailscale import TailscaleNetwork
from stagecraft.providers.network import HostCommand, MeshNode, MeshStatus


def _tailscale(raw: dict[str, Any] | None = None) -> TailscaleNetwork:
    provider = registry("network").create("tailscale", raw or {})
    assert isinstance(provider, TailscaleNetwork)
    return provider


def _peer(
    name: str, ip: str, *, online: bool = True, tags: list[str] | None = None
) -> dict[str, Any]:
    found: dict[str, Any] = {
        "ID": f"n{name}CNTRL",
        "PublicKey": f"nodekey:{name}",
        "HostName": name,
        "DNSName": f"{name}.tail1234.ts.net.",
        "OS": "linux",
        "UserID": 1,
        "TailscaleIPs": [ip, "fd7a:115c:a1e0::1"],
        "Online": online,
        "Active": False,
    }
    if tags:
        found["Tags"] = tags
    return found


def _status(state: str = "Running", **peers: dict[str, Any]) -> str:
    me = _peer("shop-web-1", "100.64.0.7", tags=["tag:server"])
    return json.dumps(
        {
            "Version": "1.62.0-t1234abcd",
            "BackendState": state,
            "TailscaleIPs": me["TailscaleIPs"],
            "Self": me,
            "MagicDNSSuffix": "tail1234.ts.net",
            "CurrentTailnet": {
                "Name": "acme.com",
                "MagicDNSSuffix": "tail1234.ts.net",
                "MagicDNSEnabled": True,
            },
            "Peer": {p["PublicKey"]: p for p in peers.values()} or None,
        }
    )


def test_status_json_becomes_state_self_and_peers() -> None:
    ts = _tailscale({"tags": ["tag:server"], "hostname_prefix": "shop-"})
    status = ts.parse_status(
        _status(
            db=_peer("shop-data-1", "100.64.0.9"), old=_peer("shop-old", "100.64.0.3", online=False)
        )
    )
    assert status.running and status.state == "Running"
    assert status.self == MeshNode(
        "shop-web-1",
        ("100.64.0.7", "fd7a:115c:a1e0::1"),
        online=True,
        dns_name="shop-web-1.tail1234.ts.net",
        tags=("tag:server",),
    )
    assert status.self.ipv4 == "100.64.0.7"
    data = status.peer("SHOP-DATA-1")
    assert data is not None and data.online and data.ipv4 == "100.64.0.9"
    assert status.peer("shop-nope") is None
    assert ts.joined_as(status, "web-1")


@pytest.mark.parametrize(
    ("config", "state", "why"),
    [
        ({"tags": ["tag:server"], "hostname_prefix": "shop-"}, "Stopped", "not running"),
        ({"tags": ["tag:server"], "hostname_prefix": "shop-"}, "NeedsLogin", "logged out"),
        ({"tags": ["tag:server"], "hostname_prefix": "other-"}, "Running", "another hostname"),
        ({"tags": ["tag:web"], "hostname_prefix": "shop-"}, "Running", "other tags"),
        ({"hostname_prefix": "shop-"}, "Running", "tags to drop"),
    ],
)
def test_joined_as_needs_running_same_hostname_and_same_tags(
    config: dict[str, Any], state: str, why: str
) -> None:
    ts = _tailscale(config)
    assert not ts.joined_as(ts.parse_status(_status(state)), "web-1"), why


def test_a_rejoined_node_is_found_online_before_its_offline_ghost() -> None:
    status = MeshStatus(
        "Running",
        True,
        peers=(MeshNode("db", ("100.64.0.3",), online=False), MeshNode("db", ("100.64.0.4",))),
    )
    found = status.peer("db")
    assert found is not None and found.ipv4 == "100.64.0.4"


def test_logged_out_status_has_no_peers_and_no_addresses() -> None:
    doc = {
        "BackendState": "NeedsLogin",
        "TailscaleIPs": None,
        "Self": {"HostName": "debian", "TailscaleIPs": None, "Online": False},
        "Peer": None,
    }
    status = _tailscale().parse_status(json.dumps(doc))
    assert not status.running and status.state == "NeedsLogin"
    assert status.self is not None and status.self.ipv4 is None and status.peers == ()


@pytest.mark.parametrize(
    "output",
    [
        "",
        "failed to connect to local tailscaled; it doesn't appear to be running",
        '{"Self": {}}',
    ],
)
def test_output_that_is_no_status_is_a_provider_error(output: str) -> None:
    with pytest.raises(ProviderError):
        _tailscale().parse_status(output)


def test_commands_and_interface() -> None:
    ts = _tailscale()
    assert ts.status_command() == HostCommand(("tailscale", "status", "--json"))
    assert ts.address_command() == HostCommand(("tailscale", "ip", "-4"))
    assert ts.ping_command("100.64.0.9") == HostCommand(
        ("tailscale", "ping", "-c", "1", "--timeout", "5s", "100.64.0.9")
    )
    assert ts.interface == "tailscale0"
    assert ts.parse_address("100.64.0.7\n") == "100.64.0.7"
    with pytest.raises(ProviderError, match="no IPv4"):
        ts.parse_address("no current Tailscale IPs; state: NeedsLogin\n")
    assert "tailscale.com/download" in ts.install_hint()

"""``doctor --env`` reports every port a deploy publishes and on which address (issue 9 item 5)."""

from __future__ import annotations

from model_helpers import load_fleet

from stagecraft.doctor.checks import Status, check_ports


def test_every_published_port_is_listed_with_its_address() -> None:
    checks = {c.name: c for c in check_ports(load_fleet(FLEET_TLS="off"), "production")}
    assert checks["data-1"].status is Status.OK
    assert checks["data-1"].detail == "10.0.0.13:5432/tcp -> db"
    assert checks["web-1"].detail == "0.0.0.0:80/tcp -> proxy, 0.0.0.0:443/tcp -> proxy"


def test_a_cross_host_port_on_a_public_address_fails_with_both_fixes() -> None:
    checks = check_ports(load_fleet(FLEET_DATA1_ADDRESS="198.51.100.7"), "production")
    assert [c.status for c in checks] == [Status.FAIL]
    assert "data-1 has no private address" in checks[0].detail
    assert checks[0].fix and "private_address" in checks[0].fix

"""Forming a Docker Swarm over three sandbox hosts (each its own dockerd in its own netns).

Issue 14's first block: one manager and two workers, nodes labelled by role,
an overlay network; run again, nothing changes; a task on a worker reaches a
task on another worker over the overlay (VXLAN between the namespaces, DNS
round robin since the kernel has no IPVS: testbed.md). The join tokens never
reach a log line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator

import pytest

from stagecraft.deploy.swarm.cluster import ROLE_LABEL, SwarmError, form_swarm, node_state
from stagecraft.localhosts.sandbox import Sandbox
from stagecraft.runtime.ssh import SSHHost, SSHOptions

NETWORK = "stagecraft_shop_prod"
ROLES = {"h1": ["web"], "h2": ["web", "worker"], "h3": ["worker"]}


@pytest.fixture
def swarm_hosts(
    sandbox_factory: Callable[[int], Sandbox],
    ssh_options_for: Callable[[Sandbox], SSHOptions],
) -> Iterator[list[SSHHost]]:
    sandbox = sandbox_factory(3)
    options = ssh_options_for(sandbox)
    hosts = [SSHHost(h.target(), options) for h in sandbox.hosts]
    try:
        yield hosts
    finally:
        for host in reversed(hosts):  # workers first: a lone manager may leave last
            host.docker("swarm", "leave", "--force", check=False)
            host.close()


def test_three_hosts_form_one_swarm_labelled_by_role_and_a_second_run_changes_nothing(
    swarm_hosts: list[SSHHost], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    advertise = {h.name: h.target.address for h in swarm_hosts}
    first = form_swarm(
        swarm_hosts, advertise=advertise, managers=["h1"], roles=ROLES, network=NETWORK
    )
    assert first.leader == "h1"
    assert first.changes[:3] == (
        "h1: swarm initialised",
        "h2: joined as worker",
        "h3: joined as worker",
    )
    lead = swarm_hosts[0]
    listed = lead.docker("node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.ManagerStatus}}")
    assert len(listed.stdout.splitlines()) == 3
    assert all(" Ready" in line for line in listed.stdout.splitlines())
    for name, node_id in first.nodes.items():
        raw = lead.docker("node", "inspect", "--format", "{{json .Spec.Labels}}", node_id)
        labels = {k for k in json.loads(raw.stdout) if k.startswith(ROLE_LABEL)}
        assert labels == {ROLE_LABEL + r for r in ROLES[name]}
    driver = lead.docker("network", "inspect", "--format", "{{.Driver}}", NETWORK)
    assert driver.stdout.strip() == "overlay"

    again = form_swarm(
        swarm_hosts, advertise=advertise, managers=["h1"], roles=ROLES, network=NETWORK
    )
    assert again.changes == ()
    assert again.cluster_id == first.cluster_id and again.nodes == first.nodes

    moved = {**ROLES, "h3": ["web"]}  # a role change relabels only that node
    relabelled = form_swarm(
        swarm_hosts, advertise=advertise, managers=["h1"], roles=moved, network=NETWORK
    )
    assert relabelled.changes == ("h3: roles web",)

    tokens = [
        lead.docker("swarm", "join-token", "-q", kind).stdout.strip()
        for kind in ("worker", "manager")
    ]
    assert all(tokens) and not any(t in caplog.text for t in tokens)


def test_tasks_on_two_workers_reach_each_other_over_the_overlay(
    swarm_hosts: list[SSHHost], busybox_image: str
) -> None:
    advertise = {h.name: h.target.address for h in swarm_hosts}
    nodes = form_swarm(
        swarm_hosts, advertise=advertise, managers=["h1"], roles=ROLES, network=NETWORK
    ).nodes  # the sandbox hosts share one hostname: place by node id
    for host in swarm_hosts[1:]:  # no registry: each node gets the image from this machine
        from stagecraft.deploy import ship

        ship.ship_over_ssh(host, [busybox_image])
    lead = swarm_hosts[0]
    lead.docker(
        "service", "create", "--detach", "--name", "echo", "--network", NETWORK,
        "--endpoint-mode", "dnsrr", "--replicas", "1",
        "--constraint", f"node.labels.{ROLE_LABEL}worker==true",
        "--constraint", f"node.id=={nodes['h3']}",
        busybox_image, "sh", "-c", "mkdir -p /w && echo swarm-ok > /w/i && httpd -f -p 8080 -h /w",
    )  # fmt: skip
    lead.docker(
        "service", "create", "--detach", "--name", "probe", "--network", NETWORK,
        "--constraint", f"node.id=={nodes['h2']}", "--restart-condition", "none",
        busybox_image, "sh", "-c",
        "for i in $(seq 60); do wget -q -O - http://echo:8080/i && exit 0; sleep 1; done; exit 1",
    )  # fmt: skip
    script = (
        "for i in $(seq 90); do "
        "s=$(docker service ps probe --format '{{.CurrentState}}' | head -1); "
        'case "$s" in Complete*) echo "$s"; exit 0;; Failed*|Rejected*) echo "$s"; exit 1;; esac; '
        "sleep 1; done; exit 2"
    )
    result = lead.run(["sh", "-c", script], check=False, timeout=120)
    assert result.returncode == 0, (
        result.output
        + lead.docker("service", "ps", "--no-trunc", "probe", "echo", check=False).output
    )


def test_a_host_in_another_swarm_is_refused_with_the_fix(swarm_hosts: list[SSHHost]) -> None:
    lone = swarm_hosts[2]
    lone.run(f"docker swarm init --advertise-addr {lone.target.address} >/dev/null")
    advertise = {h.name: h.target.address for h in swarm_hosts}
    with pytest.raises(SwarmError) as info:
        form_swarm(swarm_hosts, advertise=advertise, managers=["h1"], roles=ROLES, network=NETWORK)
    assert "h3" in info.value.message
    assert "manages a swarm but is not one of the environment's managers" in info.value.message
    assert node_state(swarm_hosts[0]).state == "inactive"  # nothing started before the check

"""The package decisions of `hosts bootstrap` on Debian and Ubuntu (host_setup).

The apt-cache outputs are what those releases print (Debian 12 bookworm ships
only Compose v1 as docker-compose; Debian 13 ships Compose v2 under that name and
split docker-cli out of docker.io; Ubuntu 24.04 has docker-compose-v2). The e2e
test tests/e2e/test_bootstrap_bare.py runs the whole bootstrap on a real Debian 13.
"""

from __future__ import annotations

import pytest

from stagecraft.deploy.host_setup import (
    DOCKER_REPO_PACKAGES,
    HostFacts,
    parse_candidates,
    plan_docker_install,
)
from stagecraft.errors import HostError

BOOKWORM_POLICY = """\
docker.io:
  Installed: (none)
  Candidate: 20.10.24+dfsg1-1+deb12u1+b6
  Version table:
     20.10.24+dfsg1-1+deb12u1+b6 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
docker-compose:
  Installed: (none)
  Candidate: 1.29.2-3
  Version table:
     1.29.2-3 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
"""
# apt-cache policy prints nothing for a package no source knows (docker-cli on bookworm).

WHERE = "environments.prod.bootstrap.docker"


def facts(text: str) -> HostFacts:
    return HostFacts.parse(text)


DEBIAN_12 = facts("os_id=debian\nos_codename=bookworm\nos_name=Debian GNU/Linux 12\napt=yes\n")
DEBIAN_13 = facts("os_id=debian\nos_codename=trixie\nos_name=Debian GNU/Linux 13\napt=yes\n")
UBUNTU = facts("os_id=ubuntu\nos_like=debian\nos_name=Ubuntu 24.04 LTS\napt=yes\n")


def test_candidates_of_packages_apt_knows_and_does_not() -> None:
    assert parse_candidates(BOOKWORM_POLICY) == {
        "docker.io": "20.10.24+dfsg1-1+deb12u1+b6",
        "docker-compose": "1.29.2-3",
    }


def test_debian_12_has_no_compose_v2_and_the_error_names_both_fixes() -> None:
    with pytest.raises(HostError) as caught:
        plan_docker_install(
            DEBIAN_12, "distro", parse_candidates(BOOKWORM_POLICY), host="web-1", where=WHERE
        )
    assert caught.value.host == "web-1"
    assert "Debian GNU/Linux 12 has no Compose v2 package" in caught.value.message
    assert "1.29.2-3, Compose v1" in caught.value.message
    assert f"{WHERE}: docker" in (caught.value.hint or "")


def test_debian_13_takes_docker_cli_and_its_compose_v2() -> None:
    candidates = {"docker.io": "26.1.5", "docker-cli": "26.1.5", "docker-compose": "2.26.1-4"}
    assert plan_docker_install(DEBIAN_13, "distro", candidates, host="h", where=WHERE) == [
        "docker.io",
        "docker-cli",
        "docker-compose",
    ]


def test_ubuntu_prefers_docker_compose_v2_over_the_v1_package() -> None:
    candidates = {"docker.io": "24.0.7", "docker-compose": "1.29.2", "docker-compose-v2": "2.24"}
    assert plan_docker_install(UBUNTU, "distro", candidates, host="h", where=WHERE) == [
        "docker.io",
        "docker-compose-v2",
    ]


def test_docker_present_but_compose_missing_installs_only_compose() -> None:
    running = facts(
        "os_id=debian\nos_name=Debian 13\napt=yes\ndocker_cli=yes\ndocker=26.1.5\ncompose=\n"
    )
    candidates = {"docker.io": "26.1.5", "docker-compose": "2.26.1-4"}
    assert plan_docker_install(running, "distro", candidates, host="h", where=WHERE) == [
        "docker-compose"
    ]


def test_a_distribution_without_docker_io_points_to_dockers_repository() -> None:
    with pytest.raises(HostError, match=r"has no docker\.io package") as caught:
        plan_docker_install(DEBIAN_13, "distro", {}, host="h", where=WHERE)
    assert f"{WHERE}: docker" in (caught.value.hint or "")


def test_dockers_repository_installs_docker_ce_and_the_compose_plugin() -> None:
    packages = plan_docker_install(DEBIAN_12, "docker", {}, host="h", where=WHERE)
    assert packages == list(DOCKER_REPO_PACKAGES)
    assert "docker-compose-plugin" in packages and "docker-ce" in packages


def test_facts_of_other_systems_are_not_debian_like() -> None:
    fedora = facts("os_id=fedora\nos_name=Fedora Linux 41\n")
    assert not fedora.debian_like
    assert facts("os_id=linuxmint\nos_like=ubuntu debian\napt=yes\n").debian_like
    assert facts("os_id=debian\ncompose=v2.29.1\n").compose_major == 2

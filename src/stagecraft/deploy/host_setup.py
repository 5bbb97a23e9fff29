"""Make a bare Debian/Ubuntu server able to run deploys (the first part of ``hosts bootstrap``).

Per host, each step looked up first and done only when needed, so a second run
changes nothing:

1. **Docker and Compose v2.** When the daemon does not answer or ``docker compose``
   is missing, install them with apt (``environments.<env>.bootstrap.docker``):
   ``distro`` (default) takes the distribution's packages: ``docker.io`` (plus
   ``docker-cli``, which Debian 13 split out of it) and Compose v2 as
   ``docker-compose-v2`` (Ubuntu) or ``docker-compose`` when that is version 2
   (Debian 13); Debian 12 has only Compose v1, so there the fix is named.
   ``docker`` adds Docker's own apt repository (its documented procedure) and
   installs ``docker-ce`` with ``docker-compose-plugin``; ``none`` never installs.
   Then the daemon is started (``systemctl enable --now docker``, or the init
   script where systemd is not PID 1).
2. **Deploy user** (``bootstrap.user``): created in the ``docker`` group (or added
   to it), with the connecting user's ``~/.ssh/authorized_keys`` lines it lacks;
   once bootstrap made its directories, :func:`hand_over_state` makes it the
   owner of Stagecraft's state directory (``/var/lib/stagecraft``).
3. **Firewall** (``bootstrap.firewall: true``): ufw, installed when missing, lets
   in only SSH (the port Stagecraft connects to), the proxy's HTTP and HTTPS ports
   and the mesh interface, and denies the rest. Docker's published ports bypass
   ufw: Stagecraft publishes only the proxy's ports and cross-host ports bound to
   private or mesh addresses.

Commands run as root: directly when the SSH user is root, else through
``sudo -n`` (a user without passwordless sudo gets an error naming the fix).
Nothing of Stagecraft is installed. :func:`plan_docker_install` holds the
package decisions as a pure function.

Example::

    report = prepare_host(host, BootstrapConfig(user="deploy", firewall=True), env="prod",
                          open_ports=(22, 80, 443), interfaces=("tailscale0",))
    report.changes  # ("installed docker.io docker-cli docker-compose", "started docker", ...)
"""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from stagecraft import log
from stagecraft.config.models import BootstrapConfig, DockerSource
from stagecraft.deploy.state.layout import STATE_ROOT
from stagecraft.errors import HostError
from stagecraft.runtime.process import Completed
from stagecraft.runtime.ssh import SSHHost

logger = logging.getLogger(__name__)

APT_ENV = "DEBIAN_FRONTEND=noninteractive"
# Keep an admin's edited config files on install (never a prompt on a server without a tty).
APT_INSTALL = (
    "apt-get",
    "install",
    "-y",
    "-q",
    "--no-install-recommends",
    "-o",
    "Dpkg::Options::=--force-confdef",
    "-o",
    "Dpkg::Options::=--force-confold",
)
CANDIDATES = ("docker.io", "docker-cli", "docker-compose", "docker-compose-v2")
DOCKER_REPO_PACKAGES = (
    "docker-ce",
    "docker-ce-cli",
    "containerd.io",
    "docker-buildx-plugin",
    "docker-compose-plugin",
)
DAEMON_WAIT = 60  # seconds for a freshly started dockerd to answer

_FACTS = r"""
echo "uid=$(id -u)"
command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && echo sudo=yes
. /etc/os-release 2>/dev/null
echo "os_id=${ID:-}"
echo "os_like=${ID_LIKE:-}"
echo "os_codename=${VERSION_CODENAME:-}"
echo "os_name=${PRETTY_NAME:-unknown system}"
command -v apt-get >/dev/null 2>&1 && echo apt=yes
command -v docker >/dev/null 2>&1 && echo docker_cli=yes
echo "docker=$(docker version --format '{{.Server.Version}}' 2>/dev/null)"
echo "compose=$(docker compose version --short 2>/dev/null)"
[ -d /run/systemd/system ] && echo systemd=yes
command -v ufw >/dev/null 2>&1 && echo ufw=yes
if [ -n "$1" ]; then
  id -u "$1" >/dev/null 2>&1 && echo user_exists=yes
  id -nG "$1" 2>/dev/null | tr ' ' '\n' | grep -qx docker && echo user_in_docker=yes
fi
exit 0
"""

_WAIT_DAEMON = f"""
i=0
while ! docker info >/dev/null 2>&1; do
  i=$((i+1)); [ $i -ge {DAEMON_WAIT * 2} ] && exit 1; sleep 0.5
done
"""

_ADD_KEYS = r"""
set -e
user=$1; source=$(getent passwd "$2" | cut -d: -f6)/.ssh/authorized_keys
[ -f "$source" ] || { echo "no-source $source"; exit 0; }
home=$(getent passwd "$user" | cut -d: -f6)
install -d -m 700 -o "$user" -g "$user" "$home/.ssh"
target=$home/.ssh/authorized_keys
touch "$target"
added=0
while IFS= read -r line; do
  [ -n "$line" ] || continue
  grep -qxF -- "$line" "$target" || { printf '%s\n' "$line" >> "$target"; added=$((added+1)); }
done < "$source"
chown "$user:$user" "$target"; chmod 600 "$target"
echo "added $added"
"""


@dataclass(frozen=True)
class HostFacts:
    """What :func:`read_facts` found on a host."""

    os_id: str
    os_like: tuple[str, ...]
    os_codename: str
    os_name: str
    apt: bool
    docker_cli: bool
    docker_version: str | None
    compose_version: str | None
    systemd: bool
    ufw: bool
    uid: int = 0
    sudo: bool = False
    user_exists: bool = False
    user_in_docker: bool = False

    @classmethod
    def parse(cls, output: str) -> HostFacts:
        """Facts from the ``key=value`` lines of the facts script.

        >>> facts = HostFacts.parse("os_id=debian\\nos_name=Debian 13\\napt=yes\\ndocker=\\n")
        >>> facts.debian_like, facts.docker_version, facts.compose_major
        (True, None, None)
        """
        found = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)

        def value(key: str) -> str:
            return found.get(key, "").strip()

        return cls(
            os_id=value("os_id"),
            os_like=tuple(value("os_like").split()),
            os_codename=value("os_codename"),
            os_name=value("os_name") or "unknown system",
            apt=value("apt") == "yes",
            docker_cli=value("docker_cli") == "yes",
            docker_version=value("docker") or None,
            compose_version=value("compose").lstrip("v") or None,
            systemd=value("systemd") == "yes",
            ufw=value("ufw") == "yes",
            uid=int(value("uid")) if value("uid").isdigit() else -1,
            sudo=value("sudo") == "yes",
            user_exists=value("user_exists") == "yes",
            user_in_docker=value("user_in_docker") == "yes",
        )

    @property
    def debian_like(self) -> bool:
        """Debian, Ubuntu or a derivative with apt."""
        family = {self.os_id, *self.os_like}
        return self.apt and bool(family & {"debian", "ubuntu"})

    @property
    def can_root(self) -> bool:
        """Whether commands can run as root (the SSH user is root, or has passwordless sudo)."""
        return self.uid == 0 or self.sudo

    @property
    def compose_major(self) -> int | None:
        """The major version of ``docker compose``, if it answers."""
        return _major(self.compose_version)


@dataclass(frozen=True)
class SetupReport:
    """What :func:`prepare_host` changed on one host (empty ``changes``: nothing)."""

    host: str
    docker_version: str
    compose_version: str
    changes: tuple[str, ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = field(default_factory=tuple)


def plan_docker_install(
    facts: HostFacts,
    source: DockerSource,
    candidates: Mapping[str, str | None],
    *,
    host: str,
    where: str,
) -> list[str]:
    """The apt packages that give ``facts``' host a Docker daemon and Compose v2.

    ``candidates`` maps package names to the version apt would install (None when
    the sources have none); ``where`` names the setting for error hints
    (``environments.prod.bootstrap.docker``). Raises HostError (naming ``host``)
    when the source cannot provide them.

    >>> trixie = HostFacts.parse("os_id=debian\\nos_name=Debian 13\\napt=yes")
    >>> plan_docker_install(trixie, "distro", {"docker.io": "26.1.5", "docker-cli": "26.1.5",
    ...     "docker-compose": "2.26.1-4"}, host="h1", where="bootstrap.docker")
    ['docker.io', 'docker-cli', 'docker-compose']
    >>> noble = HostFacts.parse("os_id=ubuntu\\nos_like=debian\\napt=yes")
    >>> plan_docker_install(noble, "distro", {"docker.io": "24.0.7", "docker-compose": "1.29.2",
    ...     "docker-compose-v2": "2.24.6"}, host="h1", where="bootstrap.docker")
    ['docker.io', 'docker-compose-v2']
    """
    if source == "docker":
        return list(DOCKER_REPO_PACKAGES)
    packages: list[str] = []
    if facts.docker_version is None or not facts.docker_cli:
        if candidates.get("docker.io") is None:
            raise HostError(
                host,
                f"{facts.os_name} has no docker.io package",
                hint=f"set {where}: docker (Docker's apt repository), "
                "or install Docker Engine yourself",
            )
        packages.append("docker.io")
        if candidates.get("docker-cli") is not None:
            packages.append("docker-cli")  # Debian 13: docker.io only recommends its CLI
    if (facts.compose_major or 0) < 2:
        if candidates.get("docker-compose-v2") is not None:
            packages.append("docker-compose-v2")
        elif (_major(candidates.get("docker-compose")) or 0) >= 2:
            packages.append("docker-compose")
        else:
            v1 = candidates.get("docker-compose")
            found = f" (its docker-compose is {v1}, Compose v1)" if v1 else ""
            raise HostError(
                host,
                f"{facts.os_name} has no Compose v2 package{found}",
                hint=f"set {where}: docker to install Docker and the Compose plugin from "
                "Docker's apt repository, or install the Compose v2 plugin yourself",
            )
    return packages


def parse_candidates(policy: str) -> dict[str, str | None]:
    """``apt-cache policy PKG...`` output -> package -> candidate version (None if none).

    >>> parse_candidates("docker.io:\\n  Installed: (none)\\n  Candidate: 26.1.5\\n"
    ...                  "docker-compose-v2:\\n  Installed: (none)\\n  Candidate: (none)\\n")
    {'docker.io': '26.1.5', 'docker-compose-v2': None}
    """
    found: dict[str, str | None] = {}
    package = None
    for line in policy.splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            package = line.strip().rstrip(":")
        elif package and line.strip().startswith("Candidate:"):
            version = line.split(":", 1)[1].strip()
            found[package] = None if version in ("", "(none)") else version
    return found


class _Root:
    """Runs commands on a host as root (directly, or through ``sudo -n``)."""

    def __init__(self, host: SSHHost, facts: HostFacts) -> None:
        self.host = host
        self.able = facts.can_root
        self.sudo = facts.uid != 0

    def require(self, what: str) -> None:
        """HostError unless commands can run as root (naming ``what`` needs it)."""
        if not self.able:
            user = self.host.target.user or "root"
            raise HostError(
                self.host.name,
                f"bootstrap needs root to {what}: {user} is not root and cannot run `sudo -n`",
                hint="connect as root for the bootstrap, or allow the user passwordless sudo",
            )

    def run(
        self, argv: Sequence[str], *, check: bool = False, timeout: float | None = None
    ) -> Completed:
        prefix = ["sudo", "-n"] if self.sudo else []
        return self.host.run([*prefix, *argv], check=check, timeout=timeout)

    def sh(self, script: str, *args: str, timeout: float | None = None) -> Completed:
        return self.run(["sh", "-c", script, "sh", *args], timeout=timeout)

    def apt(self, *argv: str, what: str, timeout: float = 900) -> None:
        result = self.run(["env", APT_ENV, *argv], timeout=timeout)
        if not result.ok:
            raise HostError(
                self.host.name,
                f"{what} failed: {_last_line(result.output)}",
                hint="check the host's apt sources and internet access "
                f"(`{' '.join(argv[:2])}` on the host shows the whole error), then re-run",
            )


def read_facts(host: SSHHost, user: str | None) -> tuple[HostFacts, _Root]:
    """The host's facts (read as root when the SSH user may use sudo) and a root runner."""
    facts = HostFacts.parse(host.run(["sh", "-c", _FACTS, "sh", user or ""]).stdout)
    if facts.uid != 0 and facts.sudo:  # Docker may answer root only
        facts = HostFacts.parse(
            host.run(["sudo", "-n", "sh", "-c", _FACTS, "sh", user or ""]).stdout
        )
        facts = replace(facts, sudo=True)
    return facts, _Root(host, facts)


def prepare_host(
    host: SSHHost,
    config: BootstrapConfig,
    *,
    env: str,
    open_ports: Sequence[int],
    interfaces: Sequence[str] = (),
) -> SetupReport:
    """Install and configure what deploys need on ``host``; see the module docstring.

    ``open_ports`` (TCP) and ``interfaces`` are what the firewall lets in when
    ``config.firewall`` is on.
    """
    facts, root = read_facts(host, config.user)
    changes: list[str] = []
    notes: list[str] = []
    if facts.docker_version is None or (facts.compose_major or 0) < 2:
        changes += _install_docker(root, facts, config.docker, env)
        facts, root = read_facts(host, config.user)
        if facts.docker_version is None:
            raise HostError(
                host.name,
                "Docker is installed but its daemon does not answer",
                hint="see `journalctl -u docker` or /var/log/docker.log on the host",
            )
    if (facts.compose_major or 0) < 2:
        raise HostError(
            host.name,
            f"`docker compose` is {facts.compose_version or 'missing'}; deploys need Compose v2",
            hint=f"set environments.{env}.bootstrap.docker: docker, or install the Compose v2 "
            "plugin (https://docs.docker.com/compose/install/linux/)",
        )
    connecting = host.target.user or "root"
    if config.user and config.user != connecting:
        changes += _ensure_user(root, facts, config.user, connecting, notes)
    if config.firewall and not root.able:
        notes.append("firewall not checked: that needs root (connect as root, or allow sudo)")
    elif config.firewall:
        changes += _ensure_firewall(root, facts, open_ports, interfaces, env)
    for change in changes:
        log.event(logger, logging.INFO, change, host=host.name, phase="bootstrap")
    return SetupReport(
        host.name,
        facts.docker_version or "",
        facts.compose_version or "",
        tuple(changes),
        tuple(notes),
    )


def hand_over_state(host: SSHHost, config: BootstrapConfig) -> str | None:
    """Make ``config.user`` own Stagecraft's state directory; the change made, if any.

    Called when bootstrap has created its directories (releases, the lock and the
    proxy's files live there), so that the deploy user can write all of it. Files
    that a bootstrap as root rewrote (the proxy's settings) are given back quietly;
    only handing the directory over is a change.
    """
    user = config.user
    if not user or user == (host.target.user or "root"):
        return None
    _facts, root = read_facts(host, None)
    if not root.able:
        return None
    script = 'stat -c %U "$1" 2>/dev/null; find "$1" ! -user "$2" -print -quit 2>/dev/null'
    found = root.sh(script, STATE_ROOT, user).stdout.split()
    if found[:1] == [user] and len(found) == 1:
        return None
    _must(root, ["mkdir", "-p", STATE_ROOT], f"creating {STATE_ROOT}")
    _must(root, ["chown", "-R", f"{user}:{user}", STATE_ROOT], f"giving {STATE_ROOT} to {user}")
    if found[:1] == [user]:
        return None
    change = f"gave {user} {STATE_ROOT}"
    log.event(logger, logging.INFO, change, host=host.name, phase="bootstrap")
    return change


def _install_docker(root: _Root, facts: HostFacts, source: DockerSource, env: str) -> list[str]:
    name = root.host.name
    where = f"environments.{env}.bootstrap.docker"
    if source == "none":
        raise HostError(
            name,
            "Docker Engine or Compose v2 is missing and bootstrap may not install them "
            f"({where} is none)",
            hint=f"install Docker Engine and the Compose v2 plugin yourself, "
            f"or set {where}: distro",
        )
    if not root.able and facts.docker_cli:
        user = root.host.target.user or "root"
        raise HostError(
            name,
            f"Docker does not answer for {user} (its daemon is stopped, or {user} is not in "
            "the docker group)",
            hint=f"start Docker, or add {user} to the docker group (`usermod -aG docker {user}`), "
            "or connect as root for the bootstrap",
        )
    root.require("install Docker")
    if not facts.debian_like:
        raise HostError(
            name,
            f"cannot install Docker on {facts.os_name}: bootstrap installs packages on "
            "Debian and Ubuntu only",
            hint="install Docker Engine and the Compose v2 plugin yourself "
            "(https://docs.docker.com/engine/install/), then re-run",
        )
    if facts.docker_version is None and facts.docker_cli and facts.compose_major == 2:
        return _start_docker(root, facts)  # installed, only stopped
    changes: list[str] = []
    if source == "docker":
        changes.append(_add_docker_repository(root, facts))
    else:
        root.apt("apt-get", "update", "-q", what="apt-get update")
    policy = root.run(["apt-cache", "policy", *CANDIDATES]).stdout
    packages = plan_docker_install(facts, source, parse_candidates(policy), host=name, where=where)
    if packages:
        root.apt(*APT_INSTALL, *packages, what=f"installing {' '.join(packages)}")
        changes.append(f"installed {' '.join(packages)}")
    return changes + _start_docker(root, facts)


def _add_docker_repository(root: _Root, facts: HostFacts) -> str:
    """Docker's apt repository, as https://docs.docker.com/engine/install/debian/ sets it up."""
    distro = facts.os_id if facts.os_id in ("debian", "ubuntu") else None
    if distro is None or not facts.os_codename:
        raise HostError(
            root.host.name,
            f"Docker's apt repository has no packages for {facts.os_name}",
            hint="use bootstrap.docker: distro, or install Docker yourself",
        )
    root.apt("apt-get", "update", "-q", what="apt-get update")
    root.apt(*APT_INSTALL, "ca-certificates", "curl", what="installing curl")
    url = f"https://download.docker.com/linux/{distro}"
    script = (
        "set -e; install -m 0755 -d /etc/apt/keyrings; "
        f"curl -fsSL {url}/gpg -o /etc/apt/keyrings/docker.asc; "
        "chmod a+r /etc/apt/keyrings/docker.asc; "
        'echo "deb [arch=$(dpkg --print-architecture) signed-by=/etc/apt/keyrings/docker.asc] '
        f'{url} {facts.os_codename} stable" > /etc/apt/sources.list.d/docker.list'
    )
    result = root.sh(script)
    if not result.ok:
        raise HostError(
            root.host.name,
            f"adding Docker's apt repository failed: {_last_line(result.output)}",
            hint=f"the host must reach {url}; or use bootstrap.docker: distro",
        )
    root.apt("apt-get", "update", "-q", what="apt-get update (with Docker's repository)")
    return f"added Docker's apt repository ({url})"


def _start_docker(root: _Root, facts: HostFacts) -> list[str]:
    if root.sh("docker info >/dev/null 2>&1").ok:
        return []
    start = "systemctl enable --now docker" if facts.systemd else "service docker start"
    result = root.sh(f"{start} && {_WAIT_DAEMON}", timeout=DAEMON_WAIT + 30)
    if not result.ok:
        where = "journalctl -u docker" if facts.systemd else "/var/log/docker.log"
        raise HostError(
            root.host.name,
            f"the Docker daemon does not start (`{start}`): {_last_line(result.output)}",
            hint=f"see {where} on the host",
        )
    return ["started docker"]


def _ensure_user(
    root: _Root, facts: HostFacts, user: str, connecting: str, notes: list[str]
) -> list[str]:
    root.require(f"set up the deploy user {user}")
    changes: list[str] = []
    if not facts.user_exists:
        argv = ["useradd", "--create-home", "--shell", "/bin/bash", "--groups", "docker", user]
        _must(root, argv, f"creating user {user}")
        changes.append(f"created user {user} (docker group)")
    elif not facts.user_in_docker:
        _must(root, ["usermod", "-aG", "docker", user], f"adding {user} to the docker group")
        changes.append(f"added user {user} to the docker group")
    result = root.sh(_ADD_KEYS, user, connecting)
    out = result.stdout.strip()
    if not result.ok:
        raise HostError(
            root.host.name,
            f"copying SSH keys to {user} failed: {_last_line(result.output)}",
            hint=f"add the deploy keys to ~{user}/.ssh/authorized_keys yourself",
        )
    if out.startswith("no-source"):
        notes.append(f"{connecting} has no {out.split(' ', 1)[1]}: add {user}'s SSH keys yourself")
    elif out != "added 0":
        count = out.split()[-1]
        changes.append(f"gave {user} {count} SSH key(s) of {connecting}")
    return changes


def _ensure_firewall(
    root: _Root, facts: HostFacts, ports: Sequence[int], interfaces: Sequence[str], env: str
) -> list[str]:
    changes: list[str] = []
    if not facts.ufw:
        if not facts.debian_like:
            raise HostError(
                root.host.name,
                f"ufw is not installed and bootstrap cannot install it on {facts.os_name}",
                hint=f"install ufw, or set environments.{env}.bootstrap.firewall: false",
            )
        root.apt(*APT_INSTALL, "ufw", what="installing ufw")
        changes.append("installed ufw")
    before = root.run(["ufw", "status", "verbose"]).stdout
    script = " && ".join(
        [
            *(f"ufw allow {int(port)}/tcp" for port in sorted(set(ports))),
            *(f"ufw allow in on {shlex.quote(name)}" for name in interfaces),
            "ufw default deny incoming",
            "ufw default allow outgoing",
            "ufw --force enable",
        ]
    )
    result = root.sh(script)
    if not result.ok:
        raise HostError(
            root.host.name,
            f"turning on the firewall failed: {_last_line(result.output)}",
            hint=f"run `ufw status` on the host, or set environments.{env}.bootstrap.firewall: "
            "false",
        )
    after = root.run(["ufw", "status", "verbose"]).stdout
    if before != after:
        allowed = ", ".join([*(f"{p}/tcp" for p in sorted(set(ports))), *interfaces])
        changes.append(f"firewall on: only {allowed} let in")
    return changes


def _must(root: _Root, argv: Sequence[str], what: str) -> None:
    result = root.run(argv)
    if not result.ok:
        raise HostError(root.host.name, f"{what} failed: {_last_line(result.output)}")


def _major(version: str | None) -> int | None:
    match = re.match(r"v?(\d+)\.", version or "")
    return int(match.group(1)) if match else None


def _last_line(output: str) -> str:
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"

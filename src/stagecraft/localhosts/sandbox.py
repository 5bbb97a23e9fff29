"""Throw-away "remote" hosts on this Linux machine: namespaces with dockerd and sshd.

Each sandbox host is a network namespace on a private bridge, with its own
dockerd (own data, exec root, cgroup parent) and its own sshd, both running in
a private mount namespace of that host in which ``/root`` (with a stock
``.bashrc`` and the compose CLI plugin), ``/srv`` and Stagecraft's state
directories are per-host bind mounts. So ``ssh root@<address> docker ps`` sees
that host's daemon only, and files written on one host are not on the others.
Everything else of the filesystem is shared, and hosts cannot reach the
internet (only each other and the bridge address). Needs root.

*Bare* hosts (``bare=N``: the last N hosts) are servers as a cloud hands them
out: their own root filesystem (``bare_rootfs``, a tarball of a Debian or
Ubuntu system with openssh-server, made e.g. by debootstrap), sshd from that
system, no Docker, and a route to the internet (masqueraded through this
machine) so that apt can install packages. The root switch is a real
``pivot_root`` in the host's mount namespace, so a dockerd installed there later
runs containers as on a VM. ``docker_host`` points at the socket such a dockerd
would create. Two concessions to this machine, written into the root
filesystem before first boot and not part of what a bootstrap does: Docker's
``cgroup-parent`` names the host (so teardown finds its containers), and
``/etc/default/docker`` tolerates the init script failing to raise the open-files
limit (containers here lack CAP_SYS_RESOURCE).

Names: with prefix ``sc`` the bridge is ``scbr0``, hosts are ``h1``..``hN`` in
namespaces ``sc-h1``..., veths ``sc-h1``..., FORWARD rules carry the comment
``stagecraft-sandbox:sc``, and runtime state lives in
``/run/stagecraft-sandbox/sc/``. A flock on ``/run/stagecraft-sandbox/sc.lock``
marks the prefix in use; :func:`cleanup_leftovers` removes whatever a crashed
run left under a prefix nobody holds. Teardown removes every namespace,
process, mount, link, rule, cgroup and the per-host data under ``workdir``; it
keeps the tiny lock file and the empty mount-point directories it created.

Example::

    with Sandbox(3, workdir=tmp_path) as sandbox:
        host = SSHHost(SSHTarget("h1", sandbox.hosts[0].address, "root"),
                       ssh_options_for(sandbox))
        host.docker("ps")
"""

from __future__ import annotations

import logging
import re
import shlex
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from stagecraft import log
from stagecraft.localhosts import hostos
from stagecraft.localhosts.state import (
    PREFIX_RE,
    SSHD,
    STATE_ROOT,
    SandboxBusyError,
    SandboxError,
    SandboxUnavailable,
    check_available,
    claim,
    cleanup,
    cleanup_leftovers,
    cleanup_stale,
    find_leftovers,
    global_lock,
    keep,
    rule_comment,
)
from stagecraft.runtime import process
from stagecraft.runtime.fanout import fan_out
from stagecraft.runtime.process import Completed, run
from stagecraft.runtime.ssh import SSHHost, SSHOptions, SSHTarget

__all__ = [
    "Sandbox",
    "SandboxBusyError",
    "SandboxError",
    "SandboxHost",
    "SandboxUnavailable",
    "check_available",
    "cleanup_leftovers",
    "cleanup_stale",
    "find_leftovers",
    "ssh_options_for",
    "start_sandbox",
]

logger = logging.getLogger(__name__)

SUBNET_PREFIX = "10.213"
PRIVATE_DIRS = (
    "/root",
    "/srv",
    "/opt/stagecraft",
    "/var/lib/stagecraft",
    "/etc/stagecraft",
    "/var/log/stagecraft",
)
STOCK_BASHRC = Path("/usr/share/base-files/dot.bashrc")
_ALLOC_LOCK = threading.Lock()
BARE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class SandboxHost:
    """One sandbox host: how to reach it over SSH and its daemon directly."""

    name: str
    address: str
    docker_host: str
    user: str = "root"
    port: int = 22
    bare: bool = False

    def target(self) -> SSHTarget:
        """This host as an :class:`SSHTarget`."""
        return SSHTarget(self.name, self.address, self.user, self.port)


class Sandbox:
    """N throw-away hosts; see the module docstring. Use as a context manager."""

    def __init__(
        self,
        count: int,
        *,
        workdir: Path,
        prefix: str = "sc",
        private_dirs: tuple[str, ...] = PRIVATE_DIRS,
        bare: int = 0,
        bare_rootfs: Path | None = None,
    ) -> None:
        if not PREFIX_RE.fullmatch(prefix):
            raise SandboxError(f"bad sandbox prefix {prefix!r}: use 1-6 of [a-z0-9]")
        if not 1 <= count <= 50:
            raise SandboxError(f"a sandbox has 1 to 50 hosts, not {count}")
        if not 0 <= bare <= count or (bare and bare_rootfs is None):
            raise SandboxError(
                f"bare={bare}: at most {count} bare hosts, and they need bare_rootfs (a tarball)"
            )
        self.bare = bare
        self.bare_rootfs = bare_rootfs
        self.count = count
        self.prefix = prefix
        self.workdir = workdir.resolve()
        self.private_dirs = private_dirs
        self.state = STATE_ROOT / prefix
        self.identity = self.workdir / "id_ed25519"
        self.known_hosts = self.workdir / "known_hosts"
        self.ssh_config = self.workdir / "ssh_config"
        self.bridge = f"{prefix}br0"
        self.bridge_address = ""
        self.subnet = ""
        self.hosts: list[SandboxHost] = []
        self._daemons: dict[str, list[process.Spawned]] = {}
        self._lock: IO[bytes] | None = None

    # -- lifecycle --------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> Sandbox:
        """Create the bridge and every host (in parallel); return ``self`` when all answer."""
        check_available()
        for private in self.private_dirs:
            if self.workdir == Path(private) or Path(private) in self.workdir.parents:
                raise SandboxError(
                    f"workdir {self.workdir} is inside {private}, which each host hides",
                    hint="use a workdir under /tmp (pytest's tmp_path is fine)",
                )
        self._lock = claim(self.prefix)
        try:
            cleanup(self.prefix)
            self._create()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Remove everything the sandbox created (safe to call twice)."""
        if self._lock is None:
            return
        cleanup(self.prefix, workdir=self.workdir)
        for daemons in self._daemons.values():
            for daemon in daemons:
                daemon.stop(grace=0.5)
        self._daemons.clear()
        self._lock.close()
        self._lock = None

    def detach(self, owner: str) -> None:
        """Leave the hosts running after this process ends (the ``local`` cloud's hosts).

        The prefix is marked kept by ``owner`` so that no test run's clean-up of
        stale sandboxes removes it; :func:`cleanup` (``infra down``) does.
        """
        keep(self.prefix, owner)
        self._daemons.clear()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # -- per-host controls ---------------------------------------------------------

    def host(self, name: str) -> SandboxHost:
        """The host called ``name``."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(f"no sandbox host {name!r} (have {[h.name for h in self.hosts]})")

    def stop_host(self, name: str) -> None:
        """Kill the host's sshd, dockerd and containers (a lost host); its data stays."""
        host = self.host(name)
        netns = Path("/var/run/netns") / self._netns(host.name)
        # The connections go first, as when a machine vanishes: a command running over SSH must
        # see its connection cut, not its dockerd gone a moment before its sshd. Until no sshd
        # is left: a session forked while the listener was being killed is a new process.
        for _ in range(5):
            sshd = {
                pid
                for pid in hostos.pids_in_namespace("net", netns)
                if hostos.exe_of(pid) == SSHD and not hostos.is_gone(pid)
            }
            if not sshd:
                break
            hostos.kill_all(sshd)
        pids = hostos.pids_in_namespace("net", netns)
        pids |= hostos.pids_in_cgroups(hostos.cgroup_dirs(re.escape(self._netns(host.name))))
        hostos.kill_all(pids)
        for daemon in self._daemons.pop(name, []):
            daemon.stop(grace=0.5)

    def start_host(self, name: str) -> None:
        """Start a stopped host's dockerd and sshd again; return when both answer."""
        host = self.host(name)
        if self._daemons.get(name):
            raise SandboxError(f"sandbox host {name} is already running")
        self._start_daemons(host)
        self._wait_ready(host)

    def rotate_host_key(self, name: str) -> None:
        """Give the host a new SSH host key (as if reinstalled); known_hosts keeps the old one."""
        host = self.host(name)
        netns = Path("/var/run/netns") / self._netns(host.name)
        sshd = {p for p in hostos.pids_in_namespace("net", netns) if hostos.exe_of(p) == SSHD}
        hostos.kill_all(sshd)
        daemons = self._daemons.get(name, [])
        for daemon in [d for d in daemons if SSHD in d.argv]:
            daemon.stop(grace=0.5)
            daemons.remove(daemon)
        key = self._host_dir(name) / "ssh_host_ed25519_key"
        for path in (key, key.with_suffix(".pub")):
            path.unlink(missing_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)])
        daemons.append(self._start_sshd(host))
        self._daemons[name] = daemons
        if not hostos.wait_until(lambda: hostos.ssh_banner_ready(host.address), timeout=30):
            raise SandboxError(f"sshd of sandbox host {name} did not restart")

    def received_bytes(self, name: str) -> int:
        """Bytes the host has received on its network interface so far (all traffic).

        The host-side end of its veth pair transmits exactly what reaches the host.
        """
        counter = Path("/sys/class/net") / self._netns(self.host(name).name) / "statistics"
        return int((counter / "tx_bytes").read_text())

    def docker(self, name: str, *args: str, check: bool = True) -> Completed:
        """Run ``docker ARGS`` against the host's daemon directly (not over SSH)."""
        return run(["docker", "-H", self.host(name).docker_host, *args], check=check)

    def image_events(self, name: str, event: str, since: float) -> list[str]:
        """The images of host ``name``'s daemon ``event`` events (``pull``, ``load``) since then."""
        result = self.docker(
            name,
            "events",
            "--since",
            f"{since:.3f}",
            "--until",
            str(int(time.time()) + 1),
            "--filter",
            "type=image",
            "--filter",
            f"event={event}",
            "--format",
            "{{.ID}}",
        )
        return result.stdout.split()

    def log_file(self, name: str, daemon: str) -> Path:
        """The log of host ``name``'s ``daemon`` ("sshd" or "dockerd")."""
        self.host(name)
        return self._host_dir(name) / f"{daemon}.log"

    def ssh_host(self, name: str, options: SSHOptions | None = None) -> SSHHost:
        """An :class:`SSHHost` for ``name`` using this sandbox's ssh_config."""
        return SSHHost(self.host(name).target(), options or ssh_options_for(self))

    # -- creation --------------------------------------------------------------------

    def _create(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.state.mkdir(parents=True, exist_ok=True)
        run(["mount", "--bind", str(self.state), str(self.state)])
        run(["mount", "--make-private", str(self.state)])
        (self.state / "workdir").write_text(str(self.workdir))
        for private in self.private_dirs:
            Path(private).mkdir(parents=True, exist_ok=True)
        self._create_bridge()
        self.hosts = [
            SandboxHost(
                name=f"h{i}",
                address=f"{self.subnet}.{i + 1}",
                docker_host=f"unix://{self.state / f'h{i}' / 'docker.sock'}",
            )
            for i in range(1, self.count - self.bare + 1)
        ]
        self.hosts += [
            SandboxHost(
                name=f"h{i}",
                address=f"{self.subnet}.{i + 1}",
                docker_host=f"unix://{self._rootfs(f'h{i}') / 'run' / 'docker.sock'}",
                bare=True,
            )
            for i in range(self.count - self.bare + 1, self.count + 1)
        ]
        if not self.identity.exists():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.identity)])
        result = fan_out(
            self.hosts, self._create_host, name=lambda h: h.name, parallel=min(self.count, 8)
        )
        result.raise_for_failures("sandbox hosts")
        self._write_ssh_files()
        result = fan_out(self.hosts, self._wait_ready, name=lambda h: h.name, parallel=8)
        result.raise_for_failures("sandbox hosts")
        log.event(logger, logging.INFO, f"sandbox {self.prefix}: {self.count} hosts up")

    def _create_bridge(self) -> None:
        with _ALLOC_LOCK, global_lock():
            used = {
                addr.split(".")[2]
                for addr in hostos.used_ipv4_addresses()
                if addr.startswith(SUBNET_PREFIX + ".")
            }
            free = next((n for n in range(256) if str(n) not in used), None)
            if free is None:
                raise SandboxError(f"no free /24 left in {SUBNET_PREFIX}.0.0/16")
            self.subnet = f"{SUBNET_PREFIX}.{free}"
            self.bridge_address = f"{self.subnet}.1"
            run(["ip", "link", "add", self.bridge, "type", "bridge"])
            run(["ip", "addr", "add", f"{self.bridge_address}/24", "dev", self.bridge])
            run(["ip", "link", "set", self.bridge, "up"])
        # The root dockerd sets FORWARD to DROP; bridged host-to-host traffic passes it.
        run(
            [
                "iptables",
                "-w",
                "-I",
                "FORWARD",
                "-i",
                self.bridge,
                "-o",
                self.bridge,
                "-m",
                "comment",
                "--comment",
                rule_comment(self.prefix),
                "-j",
                "ACCEPT",
            ]
        )
        if self.bare:
            self._route_to_internet()

    def _route_to_internet(self) -> None:
        """Masquerade the bridge's traffic to the outside (bare hosts install packages)."""
        comment = ["-m", "comment", "--comment", rule_comment(self.prefix)]
        subnet = f"{self.subnet}.0/24"
        rules = [
            ["-t", "nat", "-I", "POSTROUTING", "-s", subnet, "!", "-o", self.bridge],
            ["-I", "FORWARD", "-i", self.bridge, "!", "-o", self.bridge],
            [
                "-I",
                "FORWARD",
                "-o",
                self.bridge,
                "-m",
                "conntrack",
                "--ctstate",
                "ESTABLISHED,RELATED",
            ],
        ]
        targets = ["MASQUERADE", "ACCEPT", "ACCEPT"]
        for rule, target in zip(rules, targets, strict=True):
            run(["iptables", "-w", *rule, *comment, "-j", target])

    def _create_host(self, host: SandboxHost) -> None:
        ns = self._netns(host.name)
        hdir = self._host_dir(host.name)
        (self.state / host.name).mkdir(parents=True, exist_ok=True)
        hdir.mkdir(parents=True, exist_ok=True)
        run(["ip", "netns", "add", ns])
        run(["ip", "link", "add", ns, "type", "veth", "peer", "name", f"{ns}p"])
        run(["ip", "link", "set", ns, "master", self.bridge, "up"])
        run(["ip", "link", "set", f"{ns}p", "netns", ns])
        run(["ip", "-n", ns, "link", "set", f"{ns}p", "name", "eth0"])
        run(["ip", "-n", ns, "addr", "add", f"{host.address}/24", "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "-n", ns, "route", "add", "default", "via", self.bridge_address])
        key = hdir / "ssh_host_ed25519_key"
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host.name, "-f", str(key)])
        if host.bare:
            self._create_bare_root(host)
        else:
            self._create_mount_namespace(host)
            self._write_sshd_config(host)
        self._start_daemons(host)

    def _create_bare_root(self, host: SandboxHost) -> None:
        """Unpack the bare host's system and make it the root of the host's mount namespace."""
        assert self.bare_rootfs is not None
        root = self._rootfs(host.name)
        root.mkdir(parents=True)
        run(["tar", "-C", str(root), "-xf", str(self.bare_rootfs)], timeout=300)
        ssh = root / "etc" / "ssh"
        for old in ssh.glob("ssh_host_*"):
            old.unlink()
        key = self._host_dir(host.name) / "ssh_host_ed25519_key"
        shutil.copy2(key, ssh / key.name)
        shutil.copy2(key.with_suffix(".pub"), ssh / f"{key.name}.pub")
        (ssh / "sshd_config.d").mkdir(exist_ok=True)
        (ssh / "sshd_config.d" / "sandbox.conf").write_text(
            f"ListenAddress {host.address}\n"
            f"HostKey /etc/ssh/{key.name}\n"
            "PermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "MaxSessions 100\n"
            "MaxStartups 100:30:200\n"
        )
        dot_ssh = root / "root" / ".ssh"
        dot_ssh.mkdir(mode=0o700, parents=True, exist_ok=True)
        (dot_ssh / "authorized_keys").write_text(self.identity.with_suffix(".pub").read_text())
        (dot_ssh / "authorized_keys").chmod(0o600)
        (root / "etc" / "hostname").write_text(host.name + "\n")
        if Path("/etc/resolv.conf").exists():
            (root / "etc" / "resolv.conf").write_text(Path("/etc/resolv.conf").read_text())
        docker_conf = root / "etc" / "docker"
        docker_conf.mkdir(parents=True, exist_ok=True)
        (docker_conf / "daemon.json").write_text(
            f'{{"cgroup-parent": "/{self._netns(host.name)}"}}\n'
        )
        (root / "etc" / "default").mkdir(exist_ok=True)
        (root / "etc" / "default" / "docker").write_text(
            "# Sandbox: this machine lacks CAP_SYS_RESOURCE; the init script's `ulimit -n`\n"
            "# above the hard limit would stop it (a VM has the capability).\n"
            'ulimit() { command ulimit "$@" 2>/dev/null || true; }\n'
        )
        mnt = self.state / host.name / "mnt"
        mnt.touch()
        r = _q(root)
        script = " && ".join(
            [
                f"mount --bind {r} {r}",
                f"mount -t proc proc {r}/proc",
                f"mount -t sysfs sysfs {r}/sys",
                f"mount --rbind /sys/fs/cgroup {r}/sys/fs/cgroup",
                f"mount --rbind /dev {r}/dev",
                f"mkdir -p {r}/run/sshd {r}/.old",
                f"cd {r}",
                "pivot_root . .old",
                "umount -l /.old",
                "rmdir /.old",
            ]
        )
        run(
            [
                "nsenter",
                f"--net=/var/run/netns/{self._netns(host.name)}",
                "unshare",
                f"--mount={mnt}",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
            ]
        )

    def _create_mount_namespace(self, host: SandboxHost) -> None:
        """A persistent private mount namespace with per-host copies of the private dirs."""
        home = self._host_dir(host.name) / "fs" / "root"
        plugins = home / ".docker" / "cli-plugins"
        plugins.mkdir(parents=True, exist_ok=True)
        bashrc = STOCK_BASHRC.read_text() if STOCK_BASHRC.exists() else "# stock\n"
        (home / ".bashrc").write_text(bashrc)
        compose = _compose_plugin()
        if compose is not None:
            (plugins / "docker-compose").symlink_to(compose)
        binds = []
        for private in self.private_dirs:
            source = self._host_dir(host.name) / "fs" / private.strip("/")
            source.mkdir(parents=True, exist_ok=True)
            binds.append(f"mount --bind {_q(source)} {_q(private)}")
        mnt = self.state / host.name / "mnt"
        mnt.touch()
        script = " && ".join(binds) or "true"
        run(["unshare", f"--mount={mnt}", "--propagation", "private", "sh", "-c", script])

    def _write_sshd_config(self, host: SandboxHost) -> None:
        hdir = self._host_dir(host.name)
        state = self.state / host.name
        (state / "sshd_config").write_text(
            "\n".join(
                [
                    f"ListenAddress {host.address}",
                    f"Port {host.port}",
                    f"HostKey {hdir / 'ssh_host_ed25519_key'}",
                    f"PidFile {state / 'sshd.pid'}",
                    "UsePAM no",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    f"AuthorizedKeysFile {self.workdir / 'authorized_keys'}",
                    "StrictModes no",
                    "AllowTcpForwarding yes",
                    "MaxSessions 100",
                    "MaxStartups 100:30:200",
                    "LogLevel VERBOSE",
                    "Subsystem sftp /usr/lib/openssh/sftp-server",
                    f"SetEnv DOCKER_HOST={host.docker_host}",
                    "",
                ]
            )
        )

    def _start_daemons(self, host: SandboxHost) -> None:
        if host.bare:  # its own sshd; Docker is whatever its system has
            self._daemons[host.name] = [self._start_sshd(host)]
            return
        state = self.state / host.name
        # Stale after a kill; dockerd would wait for a (zombie) containerd it names.
        (state / "docker.pid").unlink(missing_ok=True)
        (state / "exec" / "containerd" / "containerd.pid").unlink(missing_ok=True)
        dockerd = process.spawn(
            [
                *self._enter(host),
                "dockerd",
                "--data-root",
                str(self._host_dir(host.name) / "docker"),
                "--exec-root",
                str(state / "exec"),
                "--pidfile",
                str(state / "docker.pid"),
                "-H",
                host.docker_host,
                "--cgroup-parent",
                f"/{self._netns(host.name)}",
                "--insecure-registry",
                f"{self.subnet}.0/24",
            ],
            log_path=self._host_dir(host.name) / "dockerd.log",
        )
        self._daemons[host.name] = [dockerd, self._start_sshd(host)]

    def _start_sshd(self, host: SandboxHost) -> process.Spawned:
        if host.bare:
            return process.spawn(
                [*self._enter(host), "env", "-i", f"PATH={BARE_PATH}", SSHD, "-D", "-e"],
                log_path=self._host_dir(host.name) / "sshd.log",
            )
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        config = self.state / host.name / "sshd_config"
        return process.spawn(
            [*self._enter(host), SSHD, "-D", "-e", "-f", str(config)],
            log_path=self._host_dir(host.name) / "sshd.log",
        )

    def _wait_ready(self, host: SandboxHost) -> None:
        """Wait for the host's daemon and sshd; then point /run/docker.sock at its daemon."""
        sock = Path(host.docker_host.removeprefix("unix://"))
        daemons = self._daemons.get(host.name, [])
        if host.bare:
            if not hostos.wait_until(lambda: hostos.ssh_banner_ready(host.address), timeout=30):
                raise SandboxError(
                    f"sshd of bare sandbox host {host.name} did not start: "
                    f"{_tail(daemons[-1].output()) if daemons else ''}",
                    hint=f"see {self._host_dir(host.name) / 'sshd.log'}",
                )
            return
        if not hostos.wait_until(lambda: hostos.docker_ping(sock), timeout=60):
            raise SandboxError(
                f"dockerd of sandbox host {host.name} did not start: "
                f"{_tail(daemons[0].output()) if daemons else ''}",
                hint=f"see {self._host_dir(host.name) / 'dockerd.log'}",
            )
        if not hostos.wait_until(lambda: hostos.ssh_banner_ready(host.address), timeout=30):
            raise SandboxError(
                f"sshd of sandbox host {host.name} did not start: "
                f"{_tail(daemons[-1].output()) if daemons else ''}",
                hint=f"see {self._host_dir(host.name) / 'sshd.log'}",
            )
        if Path("/run/docker.sock").exists():
            # Inside the host, /var/run/docker.sock is its own daemon (as on a real server).
            run(
                [
                    *self._enter(host, net=False),
                    "sh",
                    "-c",
                    "umount /run/docker.sock 2>/dev/null; "
                    f"mount --bind {_q(sock)} /run/docker.sock",
                ]
            )

    def _write_ssh_files(self) -> None:
        public = (self.identity.with_suffix(".pub")).read_text()
        (self.workdir / "authorized_keys").write_text(public)
        lines = []
        for host in self.hosts:
            key = (self._host_dir(host.name) / "ssh_host_ed25519_key.pub").read_text().split()
            lines.append(f"{host.address} {key[0]} {key[1]}")
        self.known_hosts.write_text("\n".join(lines) + "\n")
        aliases = [f"Host {self._netns(h.name)}\n    HostName {h.address}\n" for h in self.hosts]
        addresses = " ".join(
            [h.address for h in self.hosts] + [self._netns(h.name) for h in self.hosts]
        )
        self.ssh_config.write_text(
            f"# Sandbox {self.prefix}: written by stagecraft.localhosts.sandbox\n"
            + "".join(aliases)
            + f"Host {addresses}\n"
            "    User root\n"
            f"    IdentityFile {self.identity}\n"
            "    IdentitiesOnly yes\n"
            f"    UserKnownHostsFile {self.known_hosts}\n"
            "    GlobalKnownHostsFile /dev/null\n"
            "    StrictHostKeyChecking yes\n"
            "    BatchMode yes\n"
        )

    # -- names ------------------------------------------------------------------------

    def _netns(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def _host_dir(self, name: str) -> Path:
        return self.workdir / name

    def _rootfs(self, name: str) -> Path:
        return self._host_dir(name) / "rootfs"

    def _enter(self, host: SandboxHost, *, net: bool = True) -> list[str]:
        argv = ["nsenter", f"--mount={self.state / host.name / 'mnt'}"]
        if net:
            argv.append(f"--net=/var/run/netns/{self._netns(host.name)}")
        return argv


def ssh_options_for(sandbox: Sandbox) -> SSHOptions:
    """SSH options that reach ``sandbox``'s hosts (its ssh_config, strict host keys)."""
    return SSHOptions(config_file=sandbox.ssh_config, connect_timeout=5.0)


def _compose_plugin() -> Path | None:
    """The real docker-compose CLI plugin binary of this machine, if any."""
    candidates = [
        Path.home() / ".docker" / "cli-plugins" / "docker-compose",
        Path("/usr/local/lib/docker/cli-plugins/docker-compose"),
        Path("/usr/libexec/docker/cli-plugins/docker-compose"),
        Path("/usr/lib/docker/cli-plugins/docker-compose"),
    ]
    which = shutil.which("docker-compose")
    if which:
        candidates.append(Path(which))
    for candidate in candidates:
        if candidate.exists():
            return candidate.resolve()
    return None


def _q(path: Path | str) -> str:
    return shlex.quote(str(path))


def _tail(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"


def start_sandbox(count: int, workdir: Path, base: str, **options: Any) -> Sandbox:
    """Start a sandbox under the first free prefix ``base``, ``base1``, ... ``base9``.

    ``options`` go to :class:`Sandbox` (``bare=1, bare_rootfs=...``). Benches and
    tests share it; it needs no pytest.
    """
    for prefix in [base, *(f"{base}{n}" for n in range(1, 10))]:
        try:
            cleanup_leftovers(prefix)
            return Sandbox(count, workdir=workdir / prefix, prefix=prefix, **options).start()
        except SandboxBusyError:
            continue
    raise SandboxBusyError(f"every sandbox prefix {base}..{base}9 is in use")

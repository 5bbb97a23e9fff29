"""Shared parts of the deploy benches: sandbox hosts running a web + worker app.

A :class:`Fleet` starts an N-host sandbox (needs root), copies the web and
worker services of ``examples/fleet`` into a temporary project with a unique
name (no database: every host runs the same services), writes its
``stagecraft.yml`` with the environments a bench asks for, and runs the
installed ``stagecraft`` command against it, recording when each progress
line arrived on stderr. :meth:`Fleet.close` stops the sandbox and removes the
local images the project built, also after an error or Ctrl-C.

Example::

    with Fleet(hosts=2, base="zb") as fleet:
        fleet.configure([Environment("production", fleet.sandbox.hosts)])
        fleet.build("v1")
        run = fleet.deploy("production", "v1")
        print(run.seconds, run.times("switched in"))
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType

from stagecraft.errors import CommandTimeout, ExitCode, StagecraftError
from stagecraft.localhosts.sandbox import Sandbox, SandboxHost
from stagecraft.runtime.process import run

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "fleet"
WEB_PORT = 8080

COMPOSE = f"""\
# Written by bench/_fleet.py: the fleet example's web and worker, no database.
services:
  web:
    build:
      context: ./web
      args:
        BUSYBOX_IMAGE: ${{BUSYBOX_IMAGE:-busybox:1.36}}
    init: true
    x-stagecraft:
      kind: web
      healthcheck: {{path: /healthz/, port: {WEB_PORT}, interval: 1s, timeout: 3s}}
      drain: 2s
  worker:
    build:
      context: ./worker
      args:
        BUSYBOX_IMAGE: ${{BUSYBOX_IMAGE:-busybox:1.36}}
    init: true
    environment:
      TICK_SECONDS: "2"
    stop_grace_period: 5s
    x-stagecraft:
      kind: worker
"""


class BenchError(StagecraftError):
    """A bench could not do its work (a failed deploy, a sandbox that would not start)."""

    exit_code = ExitCode.FAILED


@dataclass(frozen=True)
class Environment:
    """One environment of the bench project: its hosts (every host runs web and worker)."""

    name: str
    hosts: Sequence[SandboxHost]
    images: str = ""  # an ``images:`` block in YAML flow style (``transfer: ssh`` when empty)
    secrets: tuple[str, ...] = ()
    driver: str = "ssh"  # or swarm: the hosts form a swarm (`hosts bootstrap` first)

    @property
    def domain(self) -> str:
        """The route's host name (one per environment: the proxies serve them all)."""
        return f"{self.name}.bench.test"


@dataclass(frozen=True)
class Line:
    """A line the CLI printed on stderr, ``at`` seconds after the command started."""

    at: float
    text: str


@dataclass(frozen=True)
class Cpu:
    """CPU seconds used so far: by this process's finished children, and by the whole machine."""

    children: float
    machine: float

    @classmethod
    def now(cls) -> Cpu:
        """The counters now (the machine's from /proc/stat: all CPUs, minus idle and iowait)."""
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        ticks = [int(v) for v in fields[:8]]
        busy = sum(ticks) - ticks[3] - ticks[4]
        return cls(usage.ru_utime + usage.ru_stime, busy / os.sysconf("SC_CLK_TCK"))

    def since(self, before: Cpu) -> Cpu:
        """What was used between ``before`` and this snapshot."""
        return Cpu(self.children - before.children, self.machine - before.machine)


@dataclass(frozen=True)
class CliRun:
    """One finished ``stagecraft`` command: exit code, wall time, timestamped stderr.

    ``cpu.children`` is the CPU time of the command and the local processes it
    waited for (ssh, docker save); ``cpu.machine`` everything the machine did
    meanwhile (the sandbox hosts' daemons and containers included).
    """

    argv: tuple[str, ...]
    returncode: int
    seconds: float
    stdout: str
    lines: tuple[Line, ...]
    cpu: Cpu

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def stderr(self) -> str:
        return "".join(line.text + "\n" for line in self.lines)

    def times(self, needle: str) -> list[float]:
        """When each stderr line containing ``needle`` arrived."""
        return [line.at for line in self.lines if needle in line.text]


def busy_fraction(seconds: float = 2.0) -> float:
    """How busy the machine's CPUs were over the next ``seconds`` (0.0 to 1.0)."""
    before = Cpu.now()
    time.sleep(seconds)  # the sampling window itself
    used = Cpu.now().since(before).machine
    return used / seconds / (os.cpu_count() or 1)


def settle(max_busy: float, timeout: float = 60.0) -> float:
    """Wait until the machine is at most ``max_busy`` busy (other work done); the last figure.

    Gives up after ``timeout`` seconds and returns the figure anyway (a noisy sample).
    """
    deadline = time.monotonic() + timeout
    busy = busy_fraction()
    while busy > max_busy and time.monotonic() < deadline:
        busy = busy_fraction()
    return busy


def stagecraft() -> str:
    """The installed ``stagecraft`` command (next to this Python, else on PATH)."""
    beside = Path(sys.executable).with_name("stagecraft")
    found = str(beside) if beside.exists() else shutil.which("stagecraft")
    if found is None:
        raise BenchError(
            "stagecraft is not installed in this Python environment",
            hint="pip install -e . (or run the bench with .venv/bin/python)",
        )
    return found


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt, so cleanup runs as on Ctrl-C."""

    def handler(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_bench(body: Callable[[], None]) -> int:
    """Run a bench's body: 0, the error's exit code with one clear line, or 130 on Ctrl-C."""
    try:
        with sigterm_as_interrupt():
            body()
    except StagecraftError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted: sandbox and images removed", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    return 0


class Fleet:
    """A sandbox of ``hosts`` hosts and a bench project on it; see the module docstring."""

    def __init__(
        self,
        hosts: int,
        base: str,
        *,
        compose: str = COMPOSE,
        services: Sequence[str] = ("web", "worker"),
        drain: str = "2s",
    ) -> None:
        self.count, self.base = hosts, base
        self.compose, self.services, self.drain = compose, tuple(services), drain
        self.project = f"{base}{uuid.uuid4().hex[:8]}"
        self._tmp = tempfile.TemporaryDirectory(prefix=f"stagecraft-bench-{base}-")
        self.workdir = Path(self._tmp.name)
        self.root = self.workdir / "app"
        self._sandbox: Sandbox | None = None
        self.caddy = ""
        self.env: dict[str, str] = {}

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            raise BenchError("the bench sandbox is not started")
        return self._sandbox

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> Fleet:
        """Start the sandbox, put the test Caddy image on every host, copy the app."""
        try:
            return self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> Fleet:
        from stagecraft.localhosts.sandbox import check_available, cleanup_stale, start_sandbox
        from stagecraft.testing import images

        check_available()
        cleanup_stale()  # what crashed runs left behind
        busybox = images.ensure_busybox_image()
        self.caddy = images.ensure_caddy_image()
        try:
            self._sandbox = start_sandbox(self.count, self.workdir / "sandbox", self.base)
        except StagecraftError as exc:
            raise BenchError(
                f"the {self.count}-host sandbox did not start: {exc.message}",
                hint=exc.hint or "see the sandbox hosts' dockerd.log and sshd.log",
            ) from exc
        for host in self.sandbox.hosts:
            images.copy_image(self.caddy, None, host.docker_host)
        self.root.mkdir(parents=True)
        for service in self.services:
            shutil.copytree(EXAMPLE / service, self.root / service)
        (self.root / "docker-compose.yml").write_text(self.compose)
        self.env = {
            **os.environ,
            "BUSYBOX_IMAGE": busybox,
            "STAGECRAFT_SSH_CONFIG": str(self.sandbox.ssh_config),
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        }
        return self

    def close(self) -> None:
        """Stop the sandbox and remove the project's local images (safe to call twice)."""
        if self._sandbox is not None:
            self._sandbox.stop()
            self._sandbox = None
        listed = run(
            ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", f"{self.project}/*"],
            check=False,
        ).stdout.split()
        if listed:
            run(["docker", "rmi", "-f", *listed], check=False)
        self._tmp.cleanup()

    def configure(
        self, environments: Sequence[Environment], *, health_timeout: str = "30s"
    ) -> None:
        """Write ``stagecraft.yml`` with ``environments`` (web + worker on every host)."""
        lines = [
            f"project: {self.project}",
            "compose: docker-compose.yml",
            f"proxy: {{provider: caddy, providers: {{caddy: {{image: {self.caddy}}}}}}}",
            "environments:",
        ]
        for environment in environments:
            lines += [f"  {environment.name}:", f"    driver: {environment.driver}", "    hosts:"]
            lines += [
                f"      {h.name}: {{address: {h.address}, roles: [app]}}" for h in environment.hosts
            ]
            lines += [
                f"    roles: {{app: [{', '.join(self.services)}]}}",
                f"    routes: {{web: {{host: {environment.domain}, service: web,"
                f" port: {WEB_PORT}}}}}",
                "    tls: 'off'",
                *([f"    images: {environment.images}"] if environment.images else []),
                *(
                    [
                        f"    secrets: [{', '.join(environment.secrets)}]",
                        "    secrets_provider: {provider: env}",
                    ]
                    if environment.secrets
                    else []
                ),
                f"    deploy: {{parallel: {len(environment.hosts)},"
                f" health_timeout: {health_timeout}, drain: {self.drain}}}",
            ]
        (self.root / "stagecraft.yml").write_text("\n".join(lines) + "\n")

    def url(self, host: SandboxHost) -> str:
        """The host's proxy (port 80 on its address)."""
        return f"http://{host.address}/"

    # -- the CLI -------------------------------------------------------------------

    def cli(self, *args: str, timeout: float = 600.0) -> CliRun:
        """Run ``stagecraft -c <app>/stagecraft.yml ARGS``; stderr lines timestamped.

        On Ctrl-C or SIGTERM the command gets SIGTERM (it stops as on Ctrl-C).
        """
        argv = (stagecraft(), "-c", str(self.root / "stagecraft.yml"), *args)
        lines: list[Line] = []
        started = time.monotonic()

        def on_line(stream: str, text: str) -> None:
            if stream == "stderr":
                lines.append(Line(time.monotonic() - started, text))

        cpu = Cpu.now()
        try:
            done = run(
                argv, env=self.env, cwd=self.root, timeout=timeout, check=False, on_line=on_line
            )
        except CommandTimeout:
            raise BenchError(
                f"`stagecraft {' '.join(args)}` did not finish within {timeout:g}s",
                hint="run it by hand with -v against a sandbox to see where it hangs",
            ) from None
        seconds = time.monotonic() - started
        return CliRun(
            argv, done.returncode, seconds, done.stdout, tuple(lines), Cpu.now().since(cpu)
        )

    def checked(self, *args: str, timeout: float = 600.0) -> CliRun:
        """:meth:`cli`, raising :class:`BenchError` with the output's tail when it fails."""
        done = self.cli(*args, timeout=timeout)
        if not done.ok:
            output = (done.stderr + done.stdout).strip().splitlines()
            last = next((line for line in reversed(output) if line.strip()), "no output")
            raise BenchError(
                f"`stagecraft {' '.join(args)}` exited with {done.returncode}: {last}",
                hint="the bench stops at the first failed command; its last output lines:\n"
                + "\n".join(output[-15:]),
            )
        return done

    def build(self, version: str) -> CliRun:
        """``stagecraft build --version VERSION`` (every environment builds the same images)."""
        return self.checked("build", "--version", version)

    def bootstrap(self, env: str) -> CliRun:
        """``stagecraft hosts bootstrap --env ENV``: Docker checked, proxy started."""
        return self.checked("hosts", "bootstrap", "--env", env)

    def deploy(self, env: str, version: str) -> CliRun:
        """``stagecraft deploy --env ENV --version VERSION``; BenchError when it fails."""
        return self.checked("deploy", "--env", env, "--version", version)

    def rollback(self, env: str) -> CliRun:
        """``stagecraft rollback --env ENV`` (to the previous successful release)."""
        return self.checked("rollback", "--env", env)

    # -- host state ----------------------------------------------------------------

    def reset_hosts(self) -> None:
        """Remove the project's containers and images from every host (the proxy stays)."""
        label = f"label=stagecraft.project={self.project}"
        for host in self.sandbox.hosts:
            ids = self.sandbox.docker(host.name, "ps", "-aq", "--filter", label).stdout.split()
            if ids:
                self.sandbox.docker(host.name, "rm", "-f", *ids)
            listed = self.sandbox.docker(
                host.name, "images", "--format", "{{.Repository}}:{{.Tag}}", f"{self.project}/*"
            ).stdout.split()
            if listed:
                self.sandbox.docker(host.name, "rmi", "-f", *listed)

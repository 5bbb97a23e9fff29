"""Requests, failures and latency under load during `stagecraft deploy` and `rollback`.

SPEC 8: "Zero failed requests under continuous load during deploy and
rollback". Prints figures; asserts nothing (exits non-zero only when a deploy
or the sandbox fails).

A sandbox of --hosts hosts (default 2, needs root) runs a web + worker app
(the fleet example's services, no database) on every host, behind each host's
proxy. v1 and v2 are built and v1 deployed first (not measured). Then three
phases, each under load through every host's proxy from the moment the load
clients answer until the command returns:

- steady: no command, --steady-seconds of load (the baseline latency);
- deploy: `stagecraft deploy --version v2` (web replaced side by side, switched);
  the same deploy and rollback are timed once without load first, and the
  under-load / without-load ratios printed;
- rollback: `stagecraft rollback` (back to v1, the previous successful release).

Two load kinds per host, at the same time: wrk with keep-alive connections
(`-t1 -c<--connections>`, `--latency`) and a Python client opening a new
connection per request (--workers threads, each request timed). A failure is
a socket error (a connection closed under a request included) or a non-2xx
answer. Printed per phase, host and load kind: requests answered, failed,
p50 and p99 latency (ms; wrk's from its `--latency` report, the Python
client's nearest-rank over every answered request) and the versions seen
first and last.

    .venv/bin/python bench/zero_downtime.py [--hosts 2] [--connections 4] [--workers 2]
        [--client-nice 19] [--trace] [--driver swarm]

``--driver swarm`` runs the same phases on a swarm of the --hosts hosts
(``hosts bootstrap`` forms it first; every host is a node of the one role, web
runs one replica per node behind the Caddy edge service, docs/swarm.md).

The machine's two cores serve the sandbox hosts, the load clients and the
deploy at once. ``--client-nice 19`` runs the clients (wrk and the Python
threads) at the lowest priority, as if they were on other machines: the
servers and the deploy get the CPU first, the clients what is left.

Before each phase the bench waits (up to 60 s) until the machine is at most
--max-busy busy (other work skews latency), and prints how busy it was.
Bounded: each phase's load stops when the command returns, after at most
--max-seconds (default 180) and, for the Python client, --max-requests per host.
Removes the sandbox and the images it built, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from _fleet import BenchError, CliRun, Environment, Fleet, run_bench, settle

from stagecraft.localhosts.sandbox import SandboxHost
from stagecraft.testing.load import NewConnectionLoad, WrkLoad

ENV = "production"
VERSION = re.compile(r"\bv\d+\b")


@dataclass(frozen=True)
class Figures:
    """What one load client saw during one phase."""

    phase: str
    host: str
    client: str
    requests: int
    failed: int
    p50: float | None
    p99: float | None
    first: str
    last: str
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Phase:
    """A measured phase: the command run under load (None: the baseline) and how long."""

    name: str
    run: CliRun | None
    seconds: float


@dataclass
class Limits:
    """How much load: wrk connections, Python workers, and the bounds of each phase."""

    connections: int
    workers: int
    max_seconds: float
    max_requests: int
    max_busy: float
    steady: float
    client_nice: int = 0


def version_of(body: str) -> str:
    """``fleet web v2 on abc123`` -> ``v2`` (``?`` when there is none)."""
    found = VERSION.search(body)
    return found.group(0) if found else "?"


def versions(bodies: Sequence[str]) -> str:
    """The distinct versions in ``bodies``, in order of first appearance."""
    seen = dict.fromkeys(version_of(b) for b in bodies if b)
    return ",".join(seen) or "-"


def under_load(
    fleet: Fleet,
    hosts: Sequence[SandboxHost],
    limits: Limits,
    phase: str,
    command: Callable[[], CliRun | None],
) -> tuple[Phase, list[Figures]]:
    """Run ``command`` while every host's proxy is loaded by wrk and the Python client."""
    domain = Environment(ENV, hosts).domain
    wrks = [
        WrkLoad(
            fleet.url(h),
            host=domain,
            duration=limits.max_seconds,
            connections=limits.connections,
            threads=1,
            latency=True,
            nice=limits.client_nice,
        )
        for h in hosts
    ]
    news = [
        NewConnectionLoad(
            fleet.url(h),
            host=domain,
            workers=limits.workers,
            max_seconds=limits.max_seconds,
            max_requests=limits.max_requests,
            nice=limits.client_nice,
        )
        for h in hosts
    ]
    with contextlib.ExitStack() as stack:
        for wrk in wrks:
            stack.enter_context(wrk)
        for new in news:
            stack.enter_context(new)
        try:
            wait_answering(news)
            started = time.monotonic()
            run = command()
            took = time.monotonic() - started
        finally:
            for wrk in wrks:
                wrk.stop()
    if took > limits.max_seconds:
        print(f"note: {phase} took {took:.0f} s, longer than the load (--max-seconds)")
    figures = [wrk_figures(phase, h, w) for h, w in zip(hosts, wrks, strict=True)]
    figures += [new_figures(phase, h, n) for h, n in zip(hosts, news, strict=True)]
    return Phase(phase, run, took), figures


def wait_answering(loads: Sequence[NewConnectionLoad], timeout: float = 30.0) -> None:
    """Poll until every Python client has had an answer (the proxies serve v1)."""
    deadline = time.monotonic() + timeout
    while any(not load.result.sequence for load in loads):
        if time.monotonic() > deadline:
            errors = [e for load in loads for e in load.result.errors[:2]]
            raise BenchError(
                f"the proxies did not answer within {timeout:g}s before the measurement",
                hint=f"first errors: {errors}" if errors else "check the deploy output",
            )
        time.sleep(0.05)


def wrk_figures(phase: str, host: SandboxHost, wrk: WrkLoad) -> Figures:
    """wrk's counts and latency percentiles."""
    result = wrk.result
    if result is None:
        raise BenchError(f"wrk against {host.name} left no report")
    return Figures(
        phase,
        host.name,
        f"wrk keep-alive (-c{wrk.connections})",
        result.requests,
        result.failures,
        result.percentile_ms(50),
        result.percentile_ms(99),
        versions(result.first_bodies),
        versions(result.last_bodies),
        () if result.requests else tuple(result.output.strip().splitlines()[-3:]),
    )


def new_figures(phase: str, host: SandboxHost, load: NewConnectionLoad) -> Figures:
    """The Python client's counts and latency percentiles."""
    result = load.result
    return Figures(
        phase,
        host.name,
        f"new connection ({load.workers} threads)",
        result.requests,
        result.failures,
        result.percentile_ms(50),
        result.percentile_ms(99),
        versions(result.sequence[:1]),
        versions(result.sequence[-1:]),
        tuple(result.errors[:3]),
    )


def print_table(phases: Sequence[Phase], figures: Sequence[Figures]) -> None:
    """The figures, one line per phase, host and load kind."""

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    for phase in phases:
        if phase.run is None:
            print(f"{phase.name}: no command, {phase.seconds:.1f} s of load (the baseline)")
            continue
        switches = [line.text for line in phase.run.lines if "switched in" in line.text]
        print(
            f"{phase.name}: `stagecraft {' '.join(phase.run.argv[3:])}` took"
            f" {phase.seconds:.1f} s; {', '.join(switches) or 'no switch'}"
        )
    header = f"{'phase':<9}{'host':<5}{'load':<30}{'requests':>9}{'failed':>7}"
    print(f"\n{header}{'p50 ms':>9}{'p99 ms':>9}  versions first -> last")
    for f in figures:
        print(
            f"{f.phase:<9}{f.host:<5}{f.client:<30}{f.requests:>9}{f.failed:>7}"
            f"{ms(f.p50):>9}{ms(f.p99):>9}  {f.first} -> {f.last}"
        )
    for f in figures:
        for error in f.errors:
            print(f"  {f.phase} {f.host} {f.client}: {error}")
    total = sum(f.failed for f in figures)
    print(f"\nfailed requests in all: {total} (target: 0)")


def print_trace(title: str, run: CliRun | None) -> None:
    """A command's stderr lines with the second each arrived (``--trace``)."""
    if run is None:
        return
    print(f"  trace of {title}:")
    for line in run.lines:
        print(f"    {line.at:6.2f}  {line.text}")


def bench(hosts: int, limits: Limits, trace: bool = False, driver: str = "ssh") -> None:
    """Set up, deploy v1, then deploy v2 and roll back under load; print the figures."""
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed", hint="apt-get install wrk")
    with Fleet(hosts=hosts, base="zb") as fleet:
        targets = fleet.sandbox.hosts
        print(
            f"sandbox: {hosts} host(s); driver {driver}; project {fleet.project}; load clients"
            f" at nice {limits.client_nice}",
            flush=True,
        )
        fleet.configure([Environment(ENV, targets, driver=driver)])
        if driver == "swarm":
            fleet.bootstrap(ENV)  # forms the swarm
        for version in ("v1", "v2"):
            fleet.build(version)
        fleet.deploy(ENV, "v1")
        settle(limits.max_busy)
        idle = fleet.deploy(ENV, "v2")
        idle_deploy = idle.seconds
        if trace:
            print_trace("the deploy without load", idle)
        settle(limits.max_busy)
        idle_rollback = fleet.rollback(ENV).seconds
        print(
            f"v1 deployed (not measured); without load: deploy v2 {idle_deploy:.1f} s, rollback"
            f" {idle_rollback:.1f} s; now the load alone, then v2 and a rollback under load"
        )
        phases: list[Phase] = []
        figures: list[Figures] = []
        commands: tuple[tuple[str, Callable[[], CliRun | None]], ...] = (
            ("steady", lambda: steady(limits.steady)),
            ("deploy", lambda: fleet.deploy(ENV, "v2")),
            ("rollback", lambda: fleet.rollback(ENV)),
        )
        for name, command in commands:
            busy = settle(limits.max_busy)
            print(f"{name}: machine {busy:.0%} busy before the load starts", flush=True)
            phase, found = under_load(fleet, targets, limits, name, command)
            if trace:
                print_trace(f"{name} under load", phase.run)
            phases.append(phase)
            figures += found
        print_table(phases, figures)
        loaded = {phase.name: phase.seconds for phase in phases}
        print(
            f"under load / without: deploy {loaded['deploy'] / idle_deploy:.2f},"
            f" rollback {loaded['rollback'] / idle_rollback:.2f} (target <= 2)"
        )


def steady(seconds: float) -> None:
    """The baseline phase: nothing but the load, for ``seconds``."""
    time.sleep(seconds)  # the measurement window itself


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        epilog="Needs root (sandbox hosts: network namespaces with dockerd and sshd) and wrk.",
    )
    parser.add_argument("--hosts", type=int, default=2, help="sandbox hosts (default 2)")
    parser.add_argument(
        "--connections", type=int, default=4, help="wrk keep-alive connections per host"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="new-connection client threads per host"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=180.0, help="bound of each phase's load"
    )
    parser.add_argument(
        "--max-requests",
        type=int,
        default=200_000,
        help="bound of each new-connection client's requests per phase",
    )
    parser.add_argument(
        "--max-busy",
        type=float,
        default=0.3,
        metavar="FRACTION",
        help="before each phase, wait (up to 60 s) until the CPUs are at most this busy"
        " (default 0.3)",
    )
    parser.add_argument(
        "--steady-seconds",
        type=float,
        default=10.0,
        help="length of the baseline phase: the same load, no deploy (default 10)",
    )
    parser.add_argument(
        "--client-nice",
        type=int,
        default=0,
        metavar="N",
        help="run the load clients at niceness N (0-19): they stand for clients on other"
        " machines, so the deploy and the servers get the CPU first (default 0: all equal)",
    )
    parser.add_argument(
        "--trace", action="store_true", help="print the deploys' stderr lines with their times"
    )
    parser.add_argument(
        "--driver",
        choices=("ssh", "swarm"),
        default="ssh",
        help="the environment's deploy driver (default ssh; swarm: docs/swarm.md)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.hosts <= 8 or min(args.connections, args.workers, args.max_requests) < 1:
        parser.error("--hosts must be 1 to 8; --connections, --workers, --max-requests >= 1")
    if args.max_seconds < 10 or not 1 <= args.steady_seconds < args.max_seconds:
        parser.error("--max-seconds must be at least 10, --steady-seconds 1 to --max-seconds")
    if not 0 <= args.client_nice <= 19:
        parser.error("--client-nice must be 0 to 19")
    limits = Limits(
        args.connections,
        args.workers,
        args.max_seconds,
        args.max_requests,
        args.max_busy,
        args.steady_seconds,
        args.client_nice,
    )
    return run_bench(lambda: bench(args.hosts, limits, args.trace, args.driver))


if __name__ == "__main__":
    sys.exit(main())

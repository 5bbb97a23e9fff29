"""Deploy wall time to 1, 2 and 4 sandbox hosts: parallel fan-out should cost about one host.

SPEC 8: "Deploy to N hosts in parallel costs about the same as to one host";
target: median(4 hosts) / median(1 host) <= 1.3. Prints figures; asserts nothing.

One sandbox of max(--counts) hosts (needs root) runs a web + worker app (the
fleet example's services, no database) on every host of an environment, so
each host does the same work whatever N is. Set-up, not timed: the release
images of v1 and v2 are built once locally (`stagecraft build --version`),
and `stagecraft hosts bootstrap` starts the proxy on every host. Then, for
each run and each N (ascending on even runs, descending on odd ones), on hosts
running nothing of the app (its containers and images removed first), and in
a new environment (`n<N>r<run>`, so no state of an earlier one is reused):

- fresh: `stagecraft deploy --env n<N>r<run> --version v1` (everything created);
- redeploy: `stagecraft deploy --version v2` to the same environment (every
  container replaced side by side, web switched through the proxy).

Both include shipping: the hosts lack the version's images, so each deploy
streams them over SSH (`docker save | ssh docker load`, about 2 MB per host).
Before each deploy the bench waits (up to 60 s) until the machine is at most
--max-busy busy, so other work on it skews fewer samples; a deploy that
started on a busy machine anyway is marked "busy". Prints one line per deploy
(with the CPU time of the CLI and of the whole machine: the sandbox hosts
share its cores), then medians and minimums per N, the 4/1 ratios against the
target, and where the time goes (phase ends read from the CLI's progress
lines on stderr, timestamped on arrival).

    .venv/bin/python bench/deploy_fanout.py [--runs 3] [--counts 1,2,4] [--warmup 1] [--trace]

Bounded: about 30 s per measured N and run plus set-up (about 5 min with the
defaults). Removes the sandbox and the images it built, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from _fleet import CliRun, Environment, Fleet, run_bench, settle

TARGET = 1.3
KINDS = ("fresh", "redeploy")
# Phase ends, in order: the last progress line containing one of the needles ends the phase.
PHASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("lock", ("lock taken",)),
    ("ship", ("images on host", "image ")),
    ("proxy", ("proxy ready", "routes of ")),
    ("rollout", ("worker] done", "web] done")),
)
EXIT_PHASE = "record"
SWITCHED = re.compile(r"switched in ([0-9.]+)s")
LEGEND = (
    "lock: CLI start, config, SSH, lock; ship: build check, plan, image transfer;"
    " proxy: release files,\nproxy, routes; rollout: web and worker (at the same time) on every"
    " host; record: ledger, unlock, prune"
)


@dataclass(frozen=True)
class Sample:
    """One measured deploy."""

    hosts: int
    run: int
    kind: str
    cli: CliRun
    busy_before: float

    @property
    def seconds(self) -> float:
        return self.cli.seconds


def phase_times(run: CliRun) -> dict[str, float]:
    """Seconds spent in each phase, from the arrival times of the progress lines."""
    spent: dict[str, float] = {}
    previous = 0.0
    for name, needles in PHASES:
        ends = [t for needle in needles for t in run.times(needle)]
        end = max([previous, *ends])
        spent[name] = end - previous
        previous = end
    spent[EXIT_PHASE] = run.seconds - previous
    return spent


def switch_seconds(run: CliRun) -> list[float]:
    """Each ``switched in N.NNNs`` the deploy printed (one per host and web service)."""
    return [float(m.group(1)) for line in run.lines for m in [SWITCHED.search(line.text)] if m]


def environments(fleet: Fleet, counts: Sequence[int], rounds: int) -> list[Environment]:
    """One environment per N and round, on the first N hosts."""
    hosts = fleet.sandbox.hosts
    return [Environment(f"n{n}r{r}", hosts[:n]) for r in range(rounds) for n in counts]


def measure(fleet: Fleet, hosts: int, run: int, max_busy: float) -> list[Sample]:
    """A fresh deploy of v1 and a redeploy of v2 to ``n<hosts>r<run>`` on clean hosts."""
    fleet.reset_hosts()
    env = f"n{hosts}r{run}"
    samples = []
    for kind, version in zip(KINDS, ("v1", "v2"), strict=True):
        busy = settle(max_busy)
        samples.append(Sample(hosts, run, kind, fleet.deploy(env, version), busy))
    return samples


def print_trace(run: CliRun) -> None:
    """Every stderr line of the deploy with its arrival time (``--trace``)."""
    for line in run.lines:
        print(f"    {line.at:6.2f}  {line.text}")


def print_sample(sample: Sample, counted: bool, max_busy: float) -> None:
    """One line per deploy, as it happens."""
    label = f"run {sample.run}" if counted else "warm-up"
    flag = "  busy" if sample.busy_before > max_busy else ""
    cpu = sample.cli.cpu
    print(
        f"{label:<8} {sample.hosts} host(s)  {sample.kind:<8} {sample.seconds:6.2f} s"
        f"   cli cpu {cpu.children:5.2f} s   machine cpu {cpu.machine:5.1f} s"
        f" ({cpu.machine / sample.seconds / (os.cpu_count() or 1):4.0%} busy)"
        f"   busy before {sample.busy_before:4.0%}{flag}",
        flush=True,
    )


def print_summary(samples: Sequence[Sample], counts: Sequence[int], max_busy: float) -> None:
    """Medians (and minimums) per N and kind, the ratios, and the phase profile."""
    runs = len({s.run for s in samples})
    print(f"\nmedians (minimums) over {runs} run(s); machine: {os.cpu_count()} cores")
    print(f"{'hosts':>5}  {'fresh s':>15}  {'redeploy s':>15}")
    medians: dict[tuple[int, str], float] = {}
    minimums: dict[tuple[int, str], float] = {}
    for n in counts:
        for kind in KINDS:
            chosen = [s.seconds for s in samples if s.hosts == n and s.kind == kind]
            medians[n, kind], minimums[n, kind] = statistics.median(chosen), min(chosen)
        print(
            f"{n:>5}  " + "  ".join(f"{medians[n, k]:>7.2f} ({minimums[n, k]:5.2f})" for k in KINDS)
        )
    low, high = min(counts), max(counts)
    for kind in KINDS if low != high else ():
        ratio = medians[high, kind] / medians[low, kind]
        verdict = "ok" if ratio <= TARGET else "over target"
        print(
            f"ratio {high}/{low} hosts, {kind}: {ratio:.2f} of the medians"
            f" ({minimums[high, kind] / minimums[low, kind]:.2f} of the minimums)"
            f" -- target <= {TARGET}: {verdict}",
            flush=True,
        )
    switches = sorted(t for s in samples for t in switch_seconds(s.cli))
    if switches:
        p99 = switches[min(len(switches) - 1, round(0.99 * (len(switches) - 1)))]
        print(
            f"switch confirmed through the proxy: {len(switches)} switches, median"
            f" {statistics.median(switches) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms,"
            f" max {switches[-1] * 1000:.0f} ms"
        )
    busy = sum(1 for s in samples if s.busy_before > max_busy)
    if busy:
        print(
            f"note: {busy} of {len(samples)} deploys started while other work kept the machine"
            f" over {max_busy:.0%} busy (marked 'busy' above): their times are inflated"
        )


def print_profile(samples: Sequence[Sample], counts: Sequence[int]) -> None:
    """Median seconds per phase and the CLI's CPU time, per N and kind."""
    print("\nwhere the time goes (medians, s; phase ends from the CLI's progress lines)")
    print(LEGEND)
    names = [name for name, _ in PHASES] + [EXIT_PHASE]
    print(f"{'hosts':>5} {'kind':<9}" + "".join(f"{n:>8}" for n in names) + f"{'cli cpu':>9}")
    for kind in KINDS:
        for n in counts:
            picked = [s for s in samples if s.hosts == n and s.kind == kind]
            profiles = [phase_times(s.cli) for s in picked]
            cells = "".join(f"{statistics.median(p[x] for p in profiles):>8.2f}" for x in names)
            cpu = statistics.median(s.cli.cpu.children for s in picked)
            print(f"{n:>5} {kind:<9}{cells}{cpu:>9.2f}")


def bench(runs: int, counts: Sequence[int], warmup: int, max_busy: float, trace: bool) -> None:
    """Set up, measure ``runs`` rounds (after ``warmup`` uncounted ones), print."""
    largest = max(counts)
    with Fleet(hosts=largest, base="fo") as fleet:
        print(f"sandbox: {largest} hosts; project {fleet.project}", flush=True)
        fleet.configure(environments(fleet, counts, runs + warmup))
        for version in ("v1", "v2"):
            fleet.build(version)
        fleet.bootstrap(f"n{largest}r0")
        print(
            "set-up (not timed): images v1 and v2 built locally, proxy started on every host\n"
            "each deploy below starts on hosts running only the proxy (fresh) or v1 (redeploy);\n"
            "shipping included: every deploy streams its 2 images over SSH to every host\n",
            flush=True,
        )
        samples: list[Sample] = []
        for round_ in range(runs + warmup):
            ordered = sorted(counts, reverse=round_ % 2 == 1)
            counted = round_ >= warmup
            for n in ordered if counted else [largest]:
                for sample in measure(fleet, n, round_, max_busy):
                    print_sample(sample, counted, max_busy)
                    if trace:
                        print_trace(sample.cli)
                    if counted:
                        samples.append(sample)
        print_summary(samples, counts, max_busy)
        print_profile(samples, counts)


def parse_counts(text: str) -> list[int]:
    """``1,2,4`` -> [1, 2, 4] (each at least 1, at most 8)."""
    try:
        counts = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 1,2,4, not {text!r}") from None
    if not counts or counts[0] < 1 or counts[-1] > 8:
        raise argparse.ArgumentTypeError("host counts must be between 1 and 8")
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        epilog="Needs root (sandbox hosts: network namespaces with dockerd and sshd).",
    )
    parser.add_argument("--runs", type=int, default=3, help="measured rounds (default 3)")
    parser.add_argument(
        "--counts", type=parse_counts, default=[1, 2, 4], help="host counts (default 1,2,4)"
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="uncounted rounds on all hosts first (default 1)"
    )
    parser.add_argument(
        "--max-busy",
        type=float,
        default=0.3,
        metavar="FRACTION",
        help="before each deploy, wait (up to 60 s) until the CPUs are at most this busy,"
        " so other work on the machine does not skew a sample (default 0.3)",
    )
    parser.add_argument(
        "--trace", action="store_true", help="print every deploy's progress lines, timed"
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be at least 1 and --warmup at least 0")
    return run_bench(lambda: bench(args.runs, args.counts, args.warmup, args.max_busy, args.trace))


if __name__ == "__main__":
    sys.exit(main())

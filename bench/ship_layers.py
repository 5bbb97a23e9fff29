"""Registry-less shipping at real image sizes: bytes on the wire and deploy wall time.

Issue 10's figures, on sandbox hosts (needs root). The app is the fleet
example's web + worker on a ~200 MB base (the Debian image of
``stagecraft.testing.images`` plus busybox): every version's web image adds a
layer of random bytes (incompressible, so the figures are the worst case) on
top of the unchanged base. For 1 and 4 hosts, in a fresh environment each:

- first: ``deploy --version v1`` to hosts without the base (everything sent);
- change 1 MB: ``deploy --version v2`` (web's top layer is 1 MB of new bytes);
- change 50 MB: ``deploy --version v3`` (50 MB of new bytes);
- nothing to send: ``deploy --version v2`` again (its images are still on the
  hosts: the same rollout work, no transfer);

and, for comparison on the same images in the same run, the whole v2 web image
streamed the way shipping worked before (``docker save | ssh HOST docker load``
to every host at once, uncompressed) and ``docker save v1 | gzip -6`` (what a
first deploy may send at most). Bytes per host come from ``deploy --json``
(``hosts[].shipped.transfer.bytes``). Prints the table, the medians, and the
targets: a 1 MB redeploy sends at least 50 times fewer bytes than the whole
image and takes at most 1.2 times the deploy with nothing to send; a first
deploy sends at most the gzip size of the image per host. Asserts nothing.

    .venv/bin/python bench/ship_layers.py [--runs 3] [--counts 1,4]

About 2-4 minutes per run and count on 2 cores. Removes the sandbox and the
images it built, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

from _fleet import BenchError, CliRun, Environment, Fleet, run_bench

from stagecraft.runtime.process import run
from stagecraft.testing import images

BASE_TAG = "stagecraft-bench/ship-base:1"
KINDS = ("first", "change 1 MB", "change 50 MB", "nothing to send")
VERSIONS = {"first": ("v1", 1), "change 1 MB": ("v2", 1), "change 50 MB": ("v3", 50)}


@dataclass(frozen=True)
class Sample:
    hosts: int
    run: int
    kind: str
    seconds: float
    bytes_per_host: float


def ensure_base() -> str:
    """Debian (~200 MB) with busybox's applets first on PATH (the fleet app's httpd, sh)."""
    if images.image_exists(BASE_TAG):
        return BASE_TAG
    debian = images.ensure_debian_image()
    busybox = images.ensure_busybox_image()
    dockerfile = (
        f"FROM {busybox} AS bb\nFROM {debian}\nCOPY --from=bb /bin/busybox /bin/busybox\n"
        "RUN /bin/busybox mkdir -p /opt/bb && /bin/busybox --install -s /opt/bb\n"
        "ENV PATH=/opt/bb:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    )
    run(
        ["docker", "build", "-q", "-t", BASE_TAG, "-"],
        input=dockerfile,
        extra_env={"DOCKER_BUILDKIT": "0"},
    )
    return BASE_TAG


def build_versions(fleet: Fleet) -> None:
    """v1, v2, v3: the web image's top layer holds that many MB of fresh random bytes."""
    blob = fleet.root / "web" / "www" / "blob.bin"
    for version, megabytes in VERSIONS.values():
        blob.write_bytes(os.urandom(megabytes << 20))
        fleet.build(version)


def shipped_bytes(done: CliRun) -> float:
    """Mean bytes per host that shipping sent (from ``deploy --json``)."""
    report = json.loads(done.stdout)
    sent = [
        (host.get("shipped") or {}).get("transfer", {}).get("bytes", 0) for host in report["hosts"]
    ]
    return float(sum(sent)) / len(sent)


def whole_image(fleet: Fleet, hosts: int, tag: str) -> tuple[float, float]:
    """Seconds and bytes per host of ``docker save TAG | ssh HOST docker load``, hosts at once."""
    targets = fleet.sandbox.hosts[:hosts]
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            [
                "sh",
                "-c",
                f"docker save {tag} | ssh -F {fleet.sandbox.ssh_config} {h.address} docker load",
            ],
            stdout=subprocess.DEVNULL,
        )
        for h in targets
    ]
    if any(p.wait() != 0 for p in procs):
        raise BenchError("a whole-image transfer failed")
    seconds = time.monotonic() - started
    size = int(run(["sh", "-c", f"docker save {tag} | wc -c"]).stdout.strip())
    for host in targets:
        fleet.sandbox.docker(host.name, "image", "rm", "-f", tag, check=False)
    return seconds, float(size)


def gzip_size(tag: str) -> float:
    return float(run(["sh", "-c", f"docker save {tag} | gzip -6 | wc -c"]).stdout.strip())


def measure(fleet: Fleet, hosts: int, index: int, samples: list[Sample]) -> tuple[float, float]:
    env = f"s{hosts}r{index}"
    fleet.configure([Environment(env, fleet.sandbox.hosts[:hosts])], health_timeout="60s")
    fleet.reset_hosts()
    for host in fleet.sandbox.hosts[:hosts]:
        fleet.sandbox.docker(host.name, "image", "rm", "-f", BASE_TAG, check=False)
    fleet.bootstrap(env)
    whole = (0.0, 0.0)
    for kind in KINDS:
        version = VERSIONS[kind][0] if kind in VERSIONS else "v2"
        if kind == "change 1 MB":
            whole = whole_image(fleet, hosts, f"{fleet.project}/web:v2")
        done = fleet.checked("deploy", "--env", env, "--version", version, "--json")
        sample = Sample(hosts, index, kind, done.seconds, shipped_bytes(done))
        samples.append(sample)
        print(
            f"{hosts} host(s) run {index}: {kind:16s} {sample.seconds:6.2f} s"
            f"  {sample.bytes_per_host / 1e6:8.2f} MB/host",
            flush=True,
        )
    return whole


def report(
    samples: list[Sample],
    counts: list[int],
    wholes: dict[int, list[tuple[float, float]]],
    gz: float,
) -> None:
    print("\nmedians (bytes per host on the wire, gzipped; deploy wall time)")
    print(f"{'hosts':>5}  {'deploy':16s} {'seconds':>8} {'MB/host':>9}")
    for hosts in counts:
        med: dict[str, tuple[float, float]] = {}
        for kind in KINDS:
            mine = [s for s in samples if s.hosts == hosts and s.kind == kind]
            med[kind] = (
                statistics.median(s.seconds for s in mine),
                statistics.median(s.bytes_per_host for s in mine),
            )
            print(f"{hosts:>5}  {kind:16s} {med[kind][0]:8.2f} {med[kind][1] / 1e6:9.2f}")
        w_sec = statistics.median(w[0] for w in wholes[hosts])
        w_bytes = statistics.median(w[1] for w in wholes[hosts])
        print(
            f"{hosts:>5}  {'whole v2 image':16s} {w_sec:8.2f} {w_bytes / 1e6:9.2f}"
            "  (docker save | ssh docker load, transfer only)"
        )
        fewer = w_bytes / max(med["change 1 MB"][1], 1.0)
        slower = med["change 1 MB"][0] / med["nothing to send"][0]
        first = med["first"][1] / gz
        print(
            f"       1 MB change sends {fewer:.0f}x fewer bytes than the whole image"
            f" (target >= 50): {'ok' if fewer >= 50 else 'MISSED'}"
        )
        print(
            f"       1 MB change takes {slower:.2f}x the deploy with nothing to send"
            f" (target <= 1.2): {'ok' if slower <= 1.2 else 'MISSED'}"
        )
        print(
            f"       first deploy sends {first:.2f}x the gzip size of the image"
            f" ({gz / 1e6:.1f} MB; target <= 1.0): {'ok' if first <= 1.0 else 'MISSED'}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--counts", default="1,4")
    args = parser.parse_args(argv)
    counts = sorted(int(c) for c in args.counts.split(","))

    def body() -> None:
        base = ensure_base()
        samples: list[Sample] = []
        wholes: dict[int, list[tuple[float, float]]] = {n: [] for n in counts}
        with Fleet(hosts=max(counts), base="sl") as fleet:
            fleet.env["BUSYBOX_IMAGE"] = base
            fleet.configure([Environment("build", fleet.sandbox.hosts[:1])])
            build_versions(fleet)
            gz = gzip_size(f"{fleet.project}/web:v1")
            for index in range(args.runs):
                for hosts in counts if index % 2 == 0 else reversed(counts):
                    wholes[hosts].append(measure(fleet, hosts, index, samples))
            report(samples, counts, wholes, gz)

    return run_bench(body)


if __name__ == "__main__":
    sys.exit(main())

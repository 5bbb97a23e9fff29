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

and, for comparison on the same images in the same run:

- the whole v2 web image streamed the way shipping worked before
  (``docker save | ssh HOST docker load`` to every host at once, uncompressed);
- the same four deploys with ``images.transfer: registry`` (Debian's
  ``docker-registry`` on this machine, fresh per run: ``deploy`` pushes once,
  every host pulls what it lacks);
- ``docker save v1`` through ``gzip -6`` and through ``zstd -3`` (size, CPU
  seconds to compress and to decompress), and whether the hosts' ``docker
  load`` reads a zstd stream at all.

Two byte figures per deploy: what shipping counted (``deploy --json``,
``hosts[].shipped.transfer.bytes``; ssh mode only) and everything the host
received on its network interface during the deploy (its veth's counter: the
images, SSH, the rollout's commands), which is comparable across modes.
Prints the table, the medians, and the targets: a 1 MB redeploy sends at least
50 times fewer bytes than the whole image and takes at most 1.2 times the
deploy with nothing to send; a first deploy sends at most the gzip size of the
image per host. Asserts nothing.

    .venv/bin/python bench/ship_layers.py [--runs 3] [--counts 1,4] [--no-registry]
    BENCH_TRACE=1 .venv/bin/python bench/ship_layers.py ...   # each deploy's lines, timed

Each deploy starts after ``sync`` on a quiet machine; the whole-image stream runs
before the first deploy of each count, to hosts that hold nothing yet.

About 4-8 minutes per run and count on 2 cores. Removes the sandbox and the
images it built, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

from _fleet import BenchError, CliRun, Environment, Fleet, run_bench, settle

from stagecraft.runtime.process import run
from stagecraft.testing import images
from stagecraft.testing.registry import local_registry

BASE_TAG = "stagecraft-bench/ship-base:1"
TRACE = os.environ.get("BENCH_TRACE") == "1"  # print each deploy's progress lines, timed
MAX_BUSY = 0.3  # machine CPU busy fraction below which a deploy sample starts
KINDS = ("first", "change 1 MB", "change 50 MB", "nothing to send")
VERSIONS = {"first": ("v1", 1), "change 1 MB": ("v2", 1), "change 50 MB": ("v3", 50)}


@dataclass(frozen=True)
class Sample:
    hosts: int
    run: int
    kind: str
    seconds: float
    bytes_per_host: float  # what shipping counted (ssh mode), 0 in registry mode
    wire_per_host: float  # what each host received on its interface during the deploy
    mode: str = "ssh"


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


def deploy_sample(
    fleet: Fleet, env: str, hosts: int, index: int, kind: str, *, mode: str
) -> Sample:
    """Deploy the version ``kind`` stands for; time and bytes per host."""
    version = VERSIONS[kind][0] if kind in VERSIONS else "v2"
    targets = fleet.sandbox.hosts[:hosts]
    # Every deploy starts on a quiet machine: the writeback and daemons' clean-up of the
    # previous step (200 MB per host) would otherwise land in this deploy, more with more hosts.
    os.sync()
    settle(MAX_BUSY)
    before = sum(fleet.sandbox.received_bytes(h.name) for h in targets)
    done = fleet.checked("deploy", "--env", env, "--version", version, "--json")
    wire = (sum(fleet.sandbox.received_bytes(h.name) for h in targets) - before) / hosts
    shipped = shipped_bytes(done) if mode == "ssh" else 0.0
    sample = Sample(hosts, index, kind, done.seconds, shipped, wire, mode)
    if TRACE:
        for line in done.lines:
            print(f"    {line.at:6.2f} {line.text[:140]}")
    print(
        f"{hosts} host(s) run {index} {mode:8s}: {kind:16s} {sample.seconds:6.2f} s"
        f"  {sample.bytes_per_host / 1e6:8.2f} MB/host shipped"
        f"  {sample.wire_per_host / 1e6:8.2f} MB/host received",
        flush=True,
    )
    return sample


def clear_hosts(fleet: Fleet, hosts: int, *patterns: str) -> None:
    """The project's containers and images gone, and the base (so nothing is shared)."""
    fleet.reset_hosts()
    for host in fleet.sandbox.hosts[:hosts]:
        listed = fleet.sandbox.docker(
            host.name, "images", "--format", "{{.Repository}}:{{.Tag}}", *patterns
        ).stdout.split()
        fleet.sandbox.docker(host.name, "image", "rm", "-f", BASE_TAG, *listed, check=False)


def measure(fleet: Fleet, hosts: int, index: int, samples: list[Sample]) -> tuple[float, float]:
    env = f"s{hosts}r{index}"
    fleet.configure([Environment(env, fleet.sandbox.hosts[:hosts])], health_timeout="60s")
    clear_hosts(fleet, hosts)
    fleet.bootstrap(env)
    # Before the deploys, to hosts holding none of it: the whole image's cost as it was, and
    # no 800 MB of loading (4 hosts) still being cleaned up during a measured deploy.
    whole = whole_image(fleet, hosts, f"{fleet.project}/web:v2")
    for kind in KINDS:
        samples.append(deploy_sample(fleet, env, hosts, index, kind, mode="ssh"))
    return whole


def measure_registry(fleet: Fleet, hosts: int, index: int, samples: list[Sample]) -> None:
    """The same deploys with ``transfer: registry`` and a fresh local registry."""
    env = f"g{hosts}r{index}"
    workdir = fleet.root.parent / f"registry-{env}"
    workdir.mkdir()
    with local_registry(fleet.sandbox.bridge_address, workdir) as registry:
        fleet.env["REGISTRY_PASSWORD"] = registry.password
        block = (
            f"{{transfer: registry, registry: {registry.host_address}/bench,"
            f" push_registry: {registry.local_address}/bench,"
            f" username: {registry.username}, password_secret: REGISTRY_PASSWORD}}"
        )
        environment = Environment(
            env, fleet.sandbox.hosts[:hosts], images=block, secrets=("REGISTRY_PASSWORD",)
        )
        fleet.configure([environment], health_timeout="60s")
        # The same images as the ssh deploys: tagged with the registry's names, so that
        # `deploy` finds them and builds nothing.
        for version in ("v1", "v2", "v3"):
            for service in ("web", "worker"):
                built = f"{fleet.project}/{service}:{version}"
                run(["docker", "tag", built, f"{registry.host_address}/bench/{service}:{version}"])
        clear_hosts(fleet, hosts, f"{registry.host_address}/*")
        fleet.bootstrap(env)
        for kind in KINDS:
            samples.append(deploy_sample(fleet, env, hosts, index, kind, mode="registry"))
        clear_hosts(fleet, hosts, f"{registry.host_address}/*")
        prefixes = (f"{registry.local_address}/", f"{registry.host_address}/")
        listed = run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"]).stdout.split()
        pushed = [name for name in listed if name.startswith(prefixes)]
        if pushed:
            run(["docker", "image", "rm", *pushed], check=False)


@dataclass(frozen=True)
class Compression:
    tool: str
    size: float
    pack_cpu: float
    unpack_cpu: float


def compression(fleet: Fleet, tag: str) -> tuple[list[Compression], str]:
    """``docker save TAG`` through gzip -6 and zstd -3; does a host's docker load read zstd?"""
    saved = fleet.root.parent / "saved.tar"
    run(["docker", "save", "-o", str(saved), tag])
    found: list[Compression] = []
    try:
        for tool, level in (("gzip", "-6"), ("zstd", "-3")):
            if shutil.which(tool) is None:
                continue
            packed = saved.with_suffix(f".{tool}")
            pack = _cpu(["sh", "-c", f"{tool} {level} -c {saved} > {packed}"])
            unpack = _cpu(["sh", "-c", f"{tool} -d -c {packed} > /dev/null"])
            found.append(Compression(tool, float(packed.stat().st_size), pack, unpack))
        verdict = "zstd not installed here"
        if saved.with_suffix(".zstd").exists():
            host = fleet.sandbox.hosts[0]
            loaded = run(
                [
                    "sh",
                    "-c",
                    f"ssh -F {fleet.sandbox.ssh_config} {host.address} docker load"
                    f" < {saved.with_suffix('.zstd')}",
                ],
                check=False,
            )
            first = (loaded.stdout + loaded.stderr).strip().splitlines()[-1:] or [""]
            verdict = "reads it" if loaded.returncode == 0 else f"refuses it ({first[0][:100]})"
            fleet.sandbox.docker(host.name, "image", "rm", "-f", tag, check=False)
    finally:
        for path in saved.parent.glob("saved.*"):
            path.unlink()
    return found, verdict


def _cpu(argv: list[str]) -> float:
    """CPU seconds (user + system) ``argv`` and its children used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run(argv)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def report(
    samples: list[Sample],
    counts: list[int],
    wholes: dict[int, list[tuple[float, float]]],
    packed: tuple[list[Compression], str],
) -> None:
    gz = next((c.size for c in packed[0] if c.tool == "gzip"), 0.0)
    print("\nmedians: deploy wall time; MB per host shipped (ssh: gzipped layers) and received")
    print(f"{'hosts':>5}  {'mode':8s} {'deploy':16s} {'seconds':>8} {'shipped':>9} {'received':>9}")
    for hosts in counts:
        med: dict[tuple[str, str], tuple[float, float, float]] = {}
        for mode in ("ssh", "registry"):
            for kind in KINDS:
                mine = [s for s in samples if (s.hosts, s.kind, s.mode) == (hosts, kind, mode)]
                if not mine:
                    continue
                med[mode, kind] = (
                    statistics.median(s.seconds for s in mine),
                    statistics.median(s.bytes_per_host for s in mine),
                    statistics.median(s.wire_per_host for s in mine),
                )
                secs, shipped, wire = med[mode, kind]
                print(
                    f"{hosts:>5}  {mode:8s} {kind:16s} {secs:8.2f} {shipped / 1e6:9.2f}"
                    f" {wire / 1e6:9.2f}"
                )
        w_sec = statistics.median(w[0] for w in wholes[hosts])
        w_bytes = statistics.median(w[1] for w in wholes[hosts])
        print(
            f"{hosts:>5}  {'save|load':8s} {'whole v2 image':16s} {w_sec:8.2f} {w_bytes / 1e6:9.2f}"
            "  (docker save | ssh docker load, transfer only)"
        )
        fewer = w_bytes / max(med["ssh", "change 1 MB"][1], 1.0)
        slower = med["ssh", "change 1 MB"][0] / med["ssh", "nothing to send"][0]
        first = med["ssh", "first"][1] / gz if gz else float("nan")
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
        for kind in KINDS:
            if ("registry", kind) in med:
                ratio = med["ssh", kind][0] / med["registry", kind][0]
                print(f"       {kind}: ssh takes {ratio:.2f}x the registry deploy's time")
    print("\nthe v1 web image (docker save) compressed, CPU seconds on this machine")
    for c in packed[0]:
        print(
            f"  {c.tool:5s} {c.size / 1e6:8.2f} MB  compress {c.pack_cpu:6.2f} s"
            f"  decompress {c.unpack_cpu:6.2f} s"
        )
    print(f"  a host's docker load (dockerd 20.10) and a zstd stream: {packed[1]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--counts", default="1,4")
    parser.add_argument(
        "--no-registry", action="store_true", help="skip the transfer: registry deploys"
    )
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
            packed = compression(fleet, f"{fleet.project}/web:v1")
            for index in range(args.runs):
                for hosts in counts if index % 2 == 0 else reversed(counts):
                    wholes[hosts].append(measure(fleet, hosts, index, samples))
                    if not args.no_registry:
                        measure_registry(fleet, hosts, index, samples)
            report(samples, counts, wholes, packed)

    return run_bench(body)


if __name__ == "__main__":
    sys.exit(main())

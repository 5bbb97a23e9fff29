"""Time-to-ready of `stagecraft dev` on examples/quickstart, next to `docker compose up --wait`.

For each run: `stagecraft dev` is started on a copy of the quickstart and timed
until it prints its "ready in" summary (infra healthy, migrations applied, proxy
and both dev servers ready), then stopped with SIGINT; and `docker compose up
--wait postgres` of the same compose file is timed alone, then stopped. Both
start from stopped (not removed) containers, as a developer's second run does.
Prints medians; asserts nothing.

    python bench/dev_startup.py [--runs 5]

Needs Docker, Node/npm (the quickstart's packages are installed from the npm
registry once), and the rights to bind ports 443/80 (else pass --https-port
and --http-port). PostgreSQL is `$POSTGRES_IMAGE` when set, else a local image
built by stagecraft.testing.images.ensure_postgres_image FROM the debootstrap Debian
image (machines without a registry).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "quickstart"
PROJECT = "quickstart"


def stagecraft() -> str:
    beside = Path(sys.executable).with_name("stagecraft")
    found = str(beside) if beside.exists() else shutil.which("stagecraft")
    if found is None:
        sys.exit("stagecraft is not installed in this environment (pip install -e .)")
    return found


def postgres_image() -> str:
    """The local stand-in for the quickstart's PostgreSQL (no registry here), built once."""
    from stagecraft.testing.images import ensure_postgres_image

    return ensure_postgres_image()


def prepare(work: Path) -> Path:
    """A copy of the quickstart with its npm packages installed."""
    project = work / PROJECT
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("node_modules", ".stagecraft"))
    for app in ("api", "web"):
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel", "error"],
            cwd=project / app,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return project


def compose(project: Path, env: dict[str, str], *args: str) -> None:
    argv = ["docker", "compose", "-p", PROJECT, "--project-directory", str(project)]
    argv += ["-f", str(project / "docker-compose.yml"), *args]
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def time_dev(project: Path, env: dict[str, str], flags: list[str]) -> float:
    """Seconds from `stagecraft dev` start until its ready summary; then SIGINT."""
    out = project.parent / "dev.out"
    with out.open("wb") as sink:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [stagecraft(), "dev", *flags],
            cwd=project,
            env=env,
            stdout=sink,
            stderr=subprocess.DEVNULL,
        )
        try:
            while b"ready in" not in out.read_bytes():
                if proc.poll() is not None:
                    sys.exit(f"stagecraft dev exited with {proc.returncode}: {out.read_text()}")
                if time.perf_counter() - start > 300:
                    sys.exit("stagecraft dev was not ready within 300 s")
                time.sleep(0.02)
            elapsed = time.perf_counter() - start
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=120)
    return elapsed


def time_compose(project: Path, env: dict[str, str]) -> float:
    """Seconds of `docker compose up --wait postgres` alone; then stop it."""
    start = time.perf_counter()
    compose(project, env, "up", "--detach", "--wait", "postgres")
    elapsed = time.perf_counter() - start
    compose(project, env, "stop", "postgres")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--https-port", type=int, default=443)
    parser.add_argument("--http-port", type=int, default=80)
    args = parser.parse_args()
    flags = ["--https-port", str(args.https_port), "--http-port", str(args.http_port)]
    with tempfile.TemporaryDirectory(prefix="stagecraft-bench-dev-") as tmp:
        project = prepare(Path(tmp))
        env = {k: v for k, v in os.environ.items() if not k.startswith("STAGECRAFT_")}
        env.update(
            NO_COLOR="1",
            XDG_DATA_HOME=str(Path(tmp) / "data"),
            STAGECRAFT_CA="own",
            POSTGRES_IMAGE=postgres_image(),
        )
        compose(project, env, "down", "--volumes")
        try:
            time_dev(project, env, flags)  # warm-up: creates the volume, CA, certificate
            dev = [time_dev(project, env, flags) for _ in range(args.runs)]
            infra = [time_compose(project, env) for _ in range(args.runs)]
        finally:
            compose(project, env, "down", "--volumes")
    print(f"runs: {args.runs} (after one warm-up run); medians")
    print(f"stagecraft dev, time to ready:       {statistics.median(dev):6.2f} s")
    print(f"docker compose up --wait (infra):    {statistics.median(infra):6.2f} s")
    print(
        "overhead of dev (migrations, certs, proxy, two dev servers): "
        f"{statistics.median(dev) - statistics.median(infra):.2f} s"
    )


if __name__ == "__main__":
    main()

"""Median wall time of `stagecraft --help` and `--version`, next to `python -c pass`.

Target (SPEC 8): <= 150 ms median on a 2-core machine. Prints figures; asserts nothing.

    python bench/cli_startup.py [--runs 30]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_MS = 150.0


def _stagecraft() -> list[str]:
    beside = Path(sys.executable).with_name("stagecraft")
    found = str(beside) if beside.exists() else shutil.which("stagecraft")
    if found is None:
        sys.exit("stagecraft is not installed in this environment (pip install -e .)")
    return [found]


def median_ms(argv: list[str], runs: int) -> float:
    """Median wall time of ``argv`` over ``runs`` runs, after one warm-up."""
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    base = median_ms([sys.executable, "-c", "pass"], args.runs)
    cmd = _stagecraft()
    print(f"{'command':<28}{'median ms':>10}{'vs python':>11}")
    print(f"{'python -c pass':<28}{base:>10.1f}{1.0:>10.2f}x")
    for flag in ("--help", "--version"):
        ms = median_ms([*cmd, flag], args.runs)
        verdict = "ok" if ms <= TARGET_MS else "over target"
        print(
            f"{'stagecraft ' + flag:<28}{ms:>10.1f}{ms / base:>10.2f}x  "
            f"(target <= {TARGET_MS:.0f} ms: {verdict})"
        )


if __name__ == "__main__":
    main()

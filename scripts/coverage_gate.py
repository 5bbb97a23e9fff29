"""Fail CI when coverage drops below the thresholds (engine >= 80 %, overall >= 60 %).

"Engine" is every package except the CLI layer and the testing helpers; it is
measured as one aggregate so that a small new module cannot fail the gate alone
while the engine as a whole is well tested. Per-package figures are printed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ENGINE_MIN = 80.0
OVERALL_MIN = 60.0
NOT_ENGINE = ("cli", "testing")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "coverage.json"
        subprocess.run([sys.executable, "-m", "coverage", "json", "-q", "-o", str(out)], check=True)
        data = json.loads(out.read_text())
    per_pkg: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for filename, info in data["files"].items():
        parts = Path(filename).parts
        if "stagecraft" not in parts:
            continue
        rel = parts[parts.index("stagecraft") + 1 :]
        pkg = rel[0] if len(rel) > 1 else "(top)"
        summary = info["summary"]
        per_pkg[pkg][0] += summary["covered_lines"]
        per_pkg[pkg][1] += summary["num_statements"]
    engine = [0, 0]
    total = [0, 0]
    for pkg in sorted(per_pkg):
        covered, statements = per_pkg[pkg]
        pct = 100.0 * covered / statements if statements else 100.0
        kind = "engine" if pkg not in NOT_ENGINE else "other"
        print(f"coverage {pkg:<12} {pct:6.1f} %  ({covered}/{statements}, {kind})")
        total[0] += covered
        total[1] += statements
        if pkg not in NOT_ENGINE:
            engine[0] += covered
            engine[1] += statements
    engine_pct = 100.0 * engine[0] / max(engine[1], 1)
    total_pct = 100.0 * total[0] / max(total[1], 1)
    print(f"coverage engine       {engine_pct:6.1f} %  (gate {ENGINE_MIN:.0f} %)")
    print(f"coverage overall      {total_pct:6.1f} %  (gate {OVERALL_MIN:.0f} %)")
    failed = []
    if engine_pct < ENGINE_MIN:
        failed.append(f"engine coverage {engine_pct:.1f} % < {ENGINE_MIN:.0f} %")
    if total_pct < OVERALL_MIN:
        failed.append(f"overall coverage {total_pct:.1f} % < {OVERALL_MIN:.0f} %")
    for line in failed:
        print(f"coverage gate failed: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

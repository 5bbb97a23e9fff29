"""The README's quick start, run as written on a sample project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYOUT = ROOT / "tests" / "fixtures" / "layouts" / "node-vite-postgres"


def test_readme_quick_start(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    shutil.copytree(LAYOUT, project)
    exe = str(Path(sys.executable).with_name("stagecraft"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGECRAFT_")}
    env["NO_COLOR"] = "1"
    for argv in (["init", "--yes"], ["config", "validate"], ["doctor"]):
        result = subprocess.run(
            [exe, *argv], cwd=project, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"{argv}: {result.stdout}\n{result.stderr}"
    assert (project / "stagecraft.yml").is_file()

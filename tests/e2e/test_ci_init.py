"""`stagecraft ci init` on the minimal example: writes, never clobbers, dry-run writes nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
CANARY = "canary-ci-secret-5e1b"


def stagecraft(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).with_name("stagecraft"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGECRAFT_")}
    env.update(NO_COLOR="1", POSTGRES_PASSWORD=CANARY)
    return subprocess.run([exe, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def test_ci_init_writes_the_workflow_once_and_never_clobbers(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "examples" / "minimal", repo)
    (repo / ".git").mkdir()
    workflow = repo / ".github" / "workflows" / "stagecraft.yml"

    dry = stagecraft(repo, "ci", "init", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert not workflow.exists()

    first = stagecraft(repo, "ci", "init")
    assert first.returncode == 0, first.stderr
    text = workflow.read_text()
    assert text == dry.stdout
    data = YAML(typ="safe").load(text)
    assert "deploy-staging" in data["jobs"]
    assert "stagecraft deploy --env staging" in text
    assert "${{ secrets.POSTGRES_PASSWORD }}" in text
    assert CANARY not in text + first.stdout + first.stderr

    again = stagecraft(repo, "ci", "init")
    assert again.returncode == 0
    assert "up to date" in again.stdout

    workflow.write_text(text + "# edited by hand\n")
    refused = stagecraft(repo, "ci", "init")
    assert refused.returncode == 2
    assert "--force" in refused.stderr
    assert workflow.read_text().endswith("# edited by hand\n")

    forced = stagecraft(repo, "ci", "init", "--force")
    assert forced.returncode == 0, forced.stderr
    assert workflow.read_text() == text

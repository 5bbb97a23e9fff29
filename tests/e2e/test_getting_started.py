"""docs/getting-started.md, step 5, as written: its environment is valid, its secret resolves.

On a copy of the layout the tutorial describes (``shop``: api, web, postgres,
mailpit), named ``shop``: ``stagecraft init --yes``, then the page's own
``environments:`` block appended to the written stagecraft.yml, its shell lines
that create ``.env.staging``, its compose ``environment`` lines for the secret,
and the commands of the console block that names this test. The steps that need
a server (doctor --env, hosts bootstrap, plan, deploy, status, rollback) name the
sandbox-host tests that run those commands.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from stagecraft.config.loader import load_project
from stagecraft.deploy.release import Version, new_release
from stagecraft.deploy.render import env_file_values, render_hosts

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "getting-started.md"
LAYOUT = ROOT / "tests" / "fixtures" / "layouts" / "node-vite-postgres"
THIS_TEST = "test_the_tutorials_environment_validates_and_its_secret_resolves"


def fences(language: str) -> list[str]:
    """The bodies of the page's fenced blocks in ``language``."""
    return re.findall(rf"```{language}\n(.*?)```", PAGE.read_text(), re.S)


def fence_starting(language: str, start: str) -> str:
    [body] = [b for b in fences(language) if b.startswith(start)]
    return body


def console_commands(test_name: str) -> list[str]:
    """The ``$ `` lines of the console block whose doctest marker names ``test_name``."""
    block = re.search(
        rf"<!-- doctest: tested-by [^>]*::{test_name} -->\s*\n```console\n(.*?)```",
        PAGE.read_text(),
        re.S,
    )
    assert block, f"no console block in {PAGE.name} names {test_name}"
    return [line[2:] for line in block[1].splitlines() if line.startswith("$ ")]


def clean_environ() -> dict[str, str]:
    """This process's environment without Stagecraft's variables or the tutorial's secret."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGECRAFT_")}
    env.pop("POSTGRES_PASSWORD", None)
    return {**env, "NO_COLOR": "1"}


def stagecraft(root: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).with_name("stagecraft"))
    return subprocess.run(
        [exe, *argv], cwd=root, env=clean_environ(), capture_output=True, text=True, timeout=120
    )


def merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value


def test_the_tutorials_environment_validates_and_its_secret_resolves(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    shutil.copytree(LAYOUT, root)
    init = stagecraft(root, ["init", "--yes"])
    assert init.returncode == 0, init.stderr

    config = root / "stagecraft.yml"
    config.write_text(config.read_text() + "\n" + fence_starting("yaml", "environments:"))
    script = fence_starting("sh", "printf 'POSTGRES_PASSWORD=")
    subprocess.run(["sh", "-euc", script], cwd=root, check=True)
    assert (root / ".env.staging").stat().st_mode & 0o077 == 0
    yaml = YAML()
    compose = yaml.load((root / "compose.yaml").read_text())
    merge(compose, yaml.load(fence_starting("yaml", "services:")))
    with (root / "compose.yaml").open("w") as out:
        yaml.dump(compose, out)

    commands = console_commands(THIS_TEST)
    assert commands == [
        "stagecraft config validate --env staging",
        "stagecraft secrets check --env staging",
    ]
    for command in commands:
        result = stagecraft(root, shlex.split(command)[1:])
        assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    checked = stagecraft(root, ["secrets", "check", "--env", "staging"])
    assert checked.stdout.split() == ["POSTGRES_PASSWORD", "ok"]
    secret = (root / ".env.staging").read_text().split("=", 1)[1].strip()
    assert secret not in checked.stdout + checked.stderr
    # The compose file still works for `stagecraft dev` (the secret's default).
    local = stagecraft(root, ["config", "validate"])
    assert local.returncode == 0, local.stderr

    # Deployed, both keys that use the secret go to their service's env file only.
    loaded = load_project(config, environ=clean_environ())
    release = new_release(loaded.config, "staging", Version("v1"))
    host = render_hosts(loaded, "staging", release)["web-1"]
    assert secret not in host.text() and sorted(host.services) == ["api", "postgres", "web"]
    for service, key in (("postgres", "POSTGRES_PASSWORD"), ("api", "DATABASE_URL")):
        values = env_file_values(host.services[service], {"POSTGRES_PASSWORD": secret})
        assert secret in values[key], (service, values)

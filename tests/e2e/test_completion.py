"""Shell completion of the installed `stagecraft`, driven the way bash, zsh and fish drive it.

Each shell's script runs `stagecraft` with ``_STAGECRAFT_COMPLETE`` set and the
words typed so far in ``COMP_WORDS``/``COMP_CWORD``; these tests do the same
in a subprocess (with no docker on PATH: names come from stagecraft.yml
alone), and, where the shell is installed, load the documented start-up
lines in the real shell and complete there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "cli.md"
TIMEOUT = 20

CONFIG = """\
project: shop
environments:
  staging:
    hosts:
      stage-1: {address: 203.0.113.10, roles: [web]}
    roles:
      web: [api, web]
  production:
    hosts:
      web-1: {address: 203.0.113.11, roles: [web]}
      web-2: {address: 203.0.113.12, roles: [web]}
      data-1: {address: 203.0.113.13, roles: [data]}
    roles:
      web: [api, web]
      data: [db]
"""
COMPOSE = """\
services:
  api: {image: "busybox:1.36"}
  web: {image: "busybox:1.36"}
  db: {image: "postgres:16-alpine"}
"""


def stagecraft_bin() -> Path:
    beside = Path(sys.executable).with_name("stagecraft")
    found = beside if beside.exists() else shutil.which("stagecraft")
    assert found, "stagecraft is not installed"
    return Path(found)


STAGECRAFT = stagecraft_bin()


def base_env(**extra: str) -> dict[str, str]:
    """A clean environment: stagecraft's directory and the system's, no docker, no STAGECRAFT_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STAGECRAFT_", "_STAGECRAFT"))}
    env["PATH"] = os.pathsep.join([str(STAGECRAFT.parent), "/usr/bin", "/bin"])
    env.update(extra)
    return env


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    root.mkdir()
    (root / "stagecraft.yml").write_text(CONFIG)
    (root / "docker-compose.yml").write_text(COMPOSE)
    return root


def complete(shell: str, line: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """Ask for the completions of ``line`` (the cursor at its end) as ``shell``'s script does."""
    words = line.split()
    if line.endswith(" "):
        words.append("")
    if shell == "fish":  # fish passes the whole line and the word under the cursor
        env = base_env(COMP_WORDS=line, COMP_CWORD=words[-1], **extra)
    else:  # bash and zsh pass the words and the index of the one under the cursor
        env = base_env(COMP_WORDS=line, COMP_CWORD=str(len(words) - 1), **extra)
    env["_STAGECRAFT_COMPLETE"] = f"{shell}_complete"
    return subprocess.run(
        [str(STAGECRAFT)], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )


def values(shell: str, result: subprocess.CompletedProcess[str]) -> list[str]:
    """The completed values out of each shell's reply format."""
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    lines = result.stdout.splitlines()
    if shell == "zsh":  # type, value, help: three lines per item
        return [lines[i + 1] for i in range(0, len(lines) - 2, 3) if lines[i] == "plain"]
    return [line.split(",", 1)[1].split("\t")[0] for line in lines if line.startswith("plain,")]


CASES = [
    ("stagecraft ", ["build", "ci", "completion", "config", "dashboard", "deploy"]),
    ("stagecraft con", ["config"]),
    ("stagecraft config v", ["validate"]),
    ("stagecraft --env ", ["staging", "production"]),
    ("stagecraft status -e p", ["production"]),
    ("stagecraft ssh ", ["stage-1", "web-1", "web-2", "data-1"]),
    ("stagecraft ssh --env production ", ["web-1", "web-2", "data-1"]),
    ("stagecraft --env staging ssh ", ["stage-1"]),
    ("stagecraft ssh --env production w", ["web-1", "web-2"]),
    ("stagecraft logs ", ["api", "web", "db"]),
    ("stagecraft logs --env staging ", ["api", "web"]),
    ("stagecraft exec --env production --host d", ["data-1"]),
    ("stagecraft exec a", ["api"]),
    ("stagecraft logs api --host ", ["stage-1", "web-1", "web-2", "data-1"]),
    ("stagecraft completion ", ["bash", "zsh", "fish"]),
]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
@pytest.mark.parametrize(("line", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_shell_protocol_completes_commands_and_names(
    shell: str, line: str, expected: list[str], project: Path
) -> None:
    got = values(shell, complete(shell, line, project))
    if line == "stagecraft ":  # every command: check a few, in order
        assert got[: len(expected)] == expected
    else:
        assert got == expected


def test_zsh_items_carry_their_help(project: Path) -> None:
    lines = complete("zsh", "stagecraft dep", project).stdout.splitlines()
    assert lines == ["plain", "deploy", "Deploy a version with zero downtime."]


def test_config_flag_earlier_on_the_line_is_used(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    config = str(project / "stagecraft.yml")
    line = f"stagecraft -c {config} ssh --env production "
    assert values("bash", complete("bash", line, elsewhere)) == ["web-1", "web-2", "data-1"]
    line = f"stagecraft logs --config {config} --env staging "
    assert values("bash", complete("bash", line, elsewhere)) == ["api", "web"]
    # The variables the CLI falls back to are honoured too.
    got = complete(
        "bash", "stagecraft ssh ", elsewhere, STAGECRAFT_CONFIG=config, STAGECRAFT_ENV="staging"
    )
    assert values("bash", got) == ["stage-1"]


@pytest.mark.parametrize(
    "config",
    [None, "environments: [unclosed\n", "project: shop\n", "environments: [staging]\n"],
    ids=["no-config", "broken-yaml", "no-environments", "odd-shape"],
)
@pytest.mark.parametrize(
    "line", ["stagecraft --env ", "stagecraft ssh ", "stagecraft logs x", "stagecraft -c nope.yml "]
)
def test_without_a_usable_config_nothing_is_offered_and_nothing_breaks(
    config: str | None, line: str, tmp_path: Path
) -> None:
    if config is not None:
        (tmp_path / "stagecraft.yml").write_text(config)
    for shell in ("bash", "zsh", "fish"):
        result = complete(shell, line, tmp_path)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stdout + result.stderr
        assert result.stderr == ""
        if line.endswith("nope.yml "):  # the command names are still offered
            assert "config" in values(shell, result)
        else:
            assert values(shell, result) == []


def test_bash_source_prints_the_script_not_the_help(project: Path) -> None:
    env = base_env(_STAGECRAFT_COMPLETE="bash_source")
    result = subprocess.run(
        [str(STAGECRAFT)], cwd=project, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert result.returncode == 0, result.stderr
    assert "complete -o nosort -F _stagecraft_completion stagecraft" in result.stdout
    assert "Usage:" not in result.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_command_prints_each_shells_script(shell: str, project: Path) -> None:
    printed = subprocess.run(
        [str(STAGECRAFT), "completion", shell],
        cwd=project,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert printed.returncode == 0, printed.stderr
    assert f"_STAGECRAFT_COMPLETE={shell}_complete" in printed.stdout
    sourced = subprocess.run(
        [str(STAGECRAFT)],
        cwd=project,
        env=base_env(_STAGECRAFT_COMPLETE=f"{shell}_source"),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert printed.stdout == sourced.stdout


def test_completion_rejects_an_unknown_shell(project: Path) -> None:
    result = subprocess.run(
        [str(STAGECRAFT), "completion", "tcsh"],
        cwd=project,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 2
    assert "bash" in result.stderr and "Traceback" not in result.stderr


# --- the documented start-up lines, in the real shells ------------------------------------


def documented_rc_line(shell: str) -> str:
    """The line docs/cli.md tells ``shell`` users to add to their start-up file."""
    block = re.search(rf"```{shell}\n#[^\n]*\n(?P<line>[^\n]+)\n```", DOC.read_text())
    assert block, f"docs/cli.md has no {shell} start-up line"
    return block["line"]


# After loading the line, each script completes `stagecraft ssh --env production <Tab>`
# and prints one candidate per line. zsh's completion builtins work only inside a
# completion widget, so `compadd` and `_describe` are stood in by printers.
DRIVERS = {
    "bash": (
        ["bash", "--norc", "--noprofile", "-c"],
        'COMP_WORDS=(stagecraft ssh --env production ""); COMP_CWORD=4\n'
        "_stagecraft_completion stagecraft\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n',
    ),
    "zsh": (
        ["zsh", "-f", "-c"],
        "compadd() { print -rl -- ${(@P)${@[-1]}} }\n"
        "_describe() { print -rl -- ${(@)${(@P)3}%%:*} }\n"
        "words=(stagecraft ssh --env production ''); CURRENT=5\n"
        "_stagecraft_completion\n",
    ),
    "fish": (["fish", "--no-config", "-c"], "complete -C 'stagecraft ssh --env production '\n"),
}
PRELUDE = {"zsh": 'autoload -Uz compinit && compinit -u -d "$HOME/.zcompdump"\n'}


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_documented_rc_lines_complete_in_each_shell(
    shell: str, project: Path, tmp_path: Path
) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed (scripts/setup.sh installs it)")
    argv, drive = DRIVERS[shell]
    script = PRELUDE.get(shell, "") + documented_rc_line(shell) + "\n" + drive
    home = tmp_path / "home"
    home.mkdir()
    result = subprocess.run(
        [*argv, script],
        cwd=project,
        env=base_env(HOME=str(home)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(result.stdout.split()) == ["data-1", "web-1", "web-2"], result.stderr

"""The installed `stagecraft` command: global flags, exit codes, error output, logging."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = ROOT / "examples" / "minimal"


def stagecraft(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    beside = Path(sys.executable).with_name("stagecraft")
    exe = str(beside) if beside.exists() else shutil.which("stagecraft")
    assert exe
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    for var in ("STAGECRAFT_ENV", "STAGECRAFT_CONFIG"):
        if env is None or var not in env:
            full_env.pop(var, None)
    return subprocess.run(
        [exe, *args],
        cwd=cwd or ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        input=input,
    )


def test_version_and_help() -> None:
    from stagecraft import __version__

    result = stagecraft("--version")
    assert result.returncode == 0
    assert __version__ in result.stdout
    help_ = stagecraft("--help")
    assert help_.returncode == 0
    for word in ("config", "doctor", "init", "--env", "--json", "--dry-run", "--log-format"):
        assert word in help_.stdout


def test_help_imports_only_click() -> None:
    """`--help` must stay fast: no pydantic, rich or ruamel at start-up."""
    code = (
        "import sys; from stagecraft.cli.main import run; "
        "rc = run(['--help']); "
        "mods = ('pydantic', 'rich', 'ruamel', 'stagecraft.config'); "
        "heavy = [m for m in mods if m in sys.modules]; "
        "print('HEAVY=' + ','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "HEAVY=\n" in result.stdout or result.stdout.strip().endswith("HEAVY=")


def test_unknown_command_is_usage_error() -> None:
    result = stagecraft("frobnicate")
    assert result.returncode == 2
    assert "No such command" in result.stderr


def test_missing_config_is_one_line_with_hint(tmp_path: Path) -> None:
    result = stagecraft("config", "validate", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: ")
    assert any(line.startswith("hint: ") and "init" in line for line in lines)


def test_config_validate_reports_every_issue_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "broken.yml").write_text(
        "project: shop\nenvironments:\n  staging:\n    hots: {}\n    deploy: {parallel: many}\n"
    )
    result = stagecraft("config", "validate", "-c", "broken.yml", "--no-compose", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2, result.stderr
    assert errors[0].startswith("error: broken.yml:4: environments.staging.hots:")
    assert "did you mean 'hosts'" in errors[0]
    assert errors[1].startswith("error: broken.yml:5: environments.staging.deploy.parallel:")
    assert "Traceback" not in result.stderr


def test_json_error_goes_to_stdout(tmp_path: Path) -> None:
    result = stagecraft("config", "validate", "--json", cwd=tmp_path)
    assert result.returncode == 2
    payload = json.loads(result.stdout)
    assert payload["error"]["type"] == "ConfigNotFound"
    assert payload["error"]["exit_code"] == 2


def test_global_flags_before_or_after_command_and_env_fallback() -> None:
    before = stagecraft("--env", "staging", "config", "show", "--json", cwd=MINIMAL)
    after = stagecraft("config", "show", "--env", "staging", "--json", cwd=MINIMAL)
    fallback = stagecraft(
        "config", "show", "--json", cwd=MINIMAL, env={"STAGECRAFT_ENV": "staging"}
    )
    assert before.returncode == after.returncode == fallback.returncode == 0, before.stderr
    assert json.loads(before.stdout) == json.loads(after.stdout) == json.loads(fallback.stdout)
    unknown = stagecraft("config", "show", "--env", "nope", cwd=MINIMAL)
    assert unknown.returncode == 2
    assert "staging" in unknown.stderr


def test_config_env_var_fallback(tmp_path: Path) -> None:
    result = stagecraft(
        "config",
        "validate",
        cwd=tmp_path,
        env={"STAGECRAFT_CONFIG": str(MINIMAL / "stagecraft.yml")},
    )
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_secrets_redacted_in_config_show() -> None:
    canary = "canary-secret-value-8d1f"
    result = stagecraft(
        "config", "show", "--env", "staging", cwd=MINIMAL, env={"POSTGRES_PASSWORD": canary}
    )
    assert result.returncode == 0, result.stderr
    assert canary not in result.stdout + result.stderr


def test_log_format_json_writes_one_object_per_event() -> None:
    result = stagecraft("--log-format", "json", "--verbose", "config", "validate", cwd=MINIMAL)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert events, "expected at least one log event on stderr"
    for event in events:
        assert {"timestamp", "level", "host", "service", "phase", "message"} <= set(event)


@pytest.mark.parametrize("flag", ["--quiet"])
def test_quiet_keeps_results(flag: str) -> None:
    result = stagecraft(flag, "config", "validate", cwd=MINIMAL)
    assert result.returncode == 0
    assert "valid" in result.stdout


def test_global_flags_after_the_command_are_honoured() -> None:
    """docs/cli.md: every global flag works after the command name too."""
    logged = stagecraft("config", "validate", "--verbose", "--log-format", "json", cwd=MINIMAL)
    assert logged.returncode == 0, logged.stderr
    events = [json.loads(line) for line in logged.stderr.splitlines() if line.strip()]
    assert any(e["level"] == "debug" for e in events), logged.stderr
    assert "valid" in logged.stdout
    quiet = stagecraft("config", "validate", "--quiet", cwd=MINIMAL)
    assert (quiet.returncode, quiet.stderr) == (0, "")
    assert "valid" in quiet.stdout
    version = stagecraft("--version", cwd=MINIMAL)
    assert version.returncode == 0 and version.stdout.startswith("stagecraft, version ")
    # After a command, --version is that command's own option (the release version).
    own = stagecraft("plan", "--version", "v9", "--help", cwd=MINIMAL)
    assert own.returncode == 0 and "--version VERSION" in own.stdout


def test_mistyped_names_are_answered_as_documented() -> None:
    """Each command of docs/cli.md's "Mistyped names" prints its documented line and exits 2."""
    section = (ROOT / "docs" / "cli.md").read_text().split("## Mistyped names", 1)[1]
    section = section.split("\n## ", 1)[0]
    commands = [line[2:] for line in section.splitlines() if line.startswith("$ ")]
    expected = section.split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    assert len(commands) == len(expected) >= 5
    for command, line in zip(commands, expected, strict=True):
        result = stagecraft(*command.split()[1:], cwd=MINIMAL)
        assert result.returncode == 2, (command, result.stderr)
        assert line in result.stderr.splitlines(), (command, result.stderr)
        assert "Traceback" not in result.stderr

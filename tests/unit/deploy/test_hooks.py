"""The hook runner with real processes: discovery, environment, secrets, redaction, failures."""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from stagecraft.deploy import hooks
from stagecraft.deploy.hooks import (
    HookContext,
    HookFailed,
    HookNotExecutable,
    HookRunner,
    Hooks,
)
from stagecraft.errors import ExitCode
from stagecraft.providers.secrets import SecretValue

ROOT = Path(__file__).resolve().parents[3]
CANARY = "canary-" + uuid.uuid4().hex
CONTEXT = HookContext(
    "deploy",
    "shop",
    "production",
    "v2",
    "20261124T001500Z-v2",
    ("web-1", "web-2", "data-1"),
    "alice@laptop",
)
ENV_DUMP = (
    '#!/bin/sh\nenv > "$DUMP_DIR/$STAGECRAFT_HOOK.env"\npwd > "$DUMP_DIR/$STAGECRAFT_HOOK.pwd"\n'
)


def write_hook(root: Path, name: str, script: str, *, mode: int = 0o755) -> Path:
    path = root / hooks.HOOKS_DIR / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script)
    path.chmod(mode)
    return path


def runner(
    root: Path,
    command: hooks.Command = "deploy",
    *,
    environ: dict[str, str] | None = None,
    secrets: tuple[SecretValue, ...] = (),
    lines: list[tuple[str, str]] | None = None,
    said: list[str] | None = None,
    timeout: float = hooks.TIMEOUT,
) -> HookRunner:
    return HookRunner(
        hooks.discover(root, command),
        replace(CONTEXT, command=command),
        secrets=secrets,
        environ={**os.environ, **(environ or {})},
        on_line=None if lines is None else lambda hook, line: lines.append((hook, line)),
        say=None if said is None else said.append,
        timeout=timeout,
    )


def read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_discover_finds_the_commands_hooks_in_the_order_they_run(tmp_path: Path) -> None:
    assert hooks.discover(tmp_path, "deploy").planned() == ()  # no hooks directory
    for name in ("on-failure", "post-deploy", "pre-rollback", "pre-deploy", "pre-build"):
        write_hook(tmp_path, name, "#!/bin/sh\n")
    assert hooks.discover(tmp_path, "deploy").planned() == (
        "pre-build",
        "pre-deploy",
        "post-deploy",
        "on-failure",
    )
    found = hooks.discover(tmp_path, "rollback")
    assert found.planned() == ("pre-rollback", "on-failure")
    assert found.describe() == (
        "hooks that would run (.stagecraft/hooks): pre-rollback, on-failure (if it fails)"
    )
    assert hooks.discover(tmp_path, "deploy").describe() == (
        "hooks that would run (.stagecraft/hooks): pre-build (when an image is built), "
        "pre-deploy, post-deploy (on success), on-failure (if it fails)"
    )


def test_a_hook_without_the_execute_bit_is_an_error_naming_the_file_and_the_fix(
    tmp_path: Path,
) -> None:
    write_hook(tmp_path, "pre-deploy", "#!/bin/sh\n", mode=0o644)
    with pytest.raises(HookNotExecutable) as caught:
        hooks.discover(tmp_path, "deploy")
    assert caught.value.message == "hook .stagecraft/hooks/pre-deploy is not executable"
    assert caught.value.hint is not None
    assert "chmod +x .stagecraft/hooks/pre-deploy" in caught.value.hint
    assert caught.value.exit_code == ExitCode.FAILED
    assert hooks.discover(tmp_path, "rollback").planned() == ()  # not a rollback hook


def test_unknown_names_are_warned_about_and_samples_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_hook(tmp_path, "predeploy", "#!/bin/sh\n")
    write_hook(tmp_path, "pre-deploy.sample", "#!/bin/sh\n")
    write_hook(tmp_path, ".keep", "")
    with caplog.at_level(logging.WARNING, logger="stagecraft"):
        assert hooks.discover(tmp_path, "deploy").planned() == ()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "predeploy is no hook name" in warnings[0]
    assert "sample" not in warnings[0] and ".keep" not in warnings[0]


def test_the_environment_names_the_command_and_post_hooks_get_outcome_and_runtime(
    tmp_path: Path,
) -> None:
    dump = tmp_path / "dump"
    dump.mkdir()
    root = tmp_path / "project"
    for name in ("pre-deploy", "post-deploy"):
        write_hook(root, name, ENV_DUMP)
    inherited = {"DUMP_DIR": str(dump), "STAGECRAFT_OUTCOME": "stale", "TEAM": "platform"}
    run = runner(root, environ=inherited)

    run.pre("pre-deploy")
    run.post()

    pre, post = read_env(dump / "pre-deploy.env"), read_env(dump / "post-deploy.env")
    expected = {
        "STAGECRAFT_COMMAND": "deploy",
        "STAGECRAFT_PROJECT": "shop",
        "STAGECRAFT_ENV": "production",
        "STAGECRAFT_VERSION": "v2",
        "STAGECRAFT_RELEASE": "20261124T001500Z-v2",
        "STAGECRAFT_HOSTS": "web-1,web-2,data-1",
        "STAGECRAFT_PERFORMER": "alice@laptop",
    }
    assert {k: pre[k] for k in expected} == expected == {k: post[k] for k in expected}
    assert pre["STAGECRAFT_HOOK"] == "pre-deploy" and post["STAGECRAFT_HOOK"] == "post-deploy"
    assert "STAGECRAFT_OUTCOME" not in pre and "STAGECRAFT_RUNTIME" not in pre
    assert post["STAGECRAFT_OUTCOME"] == "success"
    assert re.fullmatch(r"\d+", post["STAGECRAFT_RUNTIME"])
    assert pre["TEAM"] == "platform"  # the rest of the environment is passed on
    assert (dump / "pre-deploy.pwd").read_text().strip() == str(root)  # cwd: project root


def test_no_resolved_secret_reaches_a_hooks_environment_or_output(tmp_path: Path) -> None:
    """As with the `env` secrets provider: the secret is a variable of the parent env."""
    dump = tmp_path / "dump"
    dump.mkdir()
    (tmp_path / "leak.txt").write_text(f"the password is {CANARY}\n")
    write_hook(
        tmp_path,
        "pre-deploy",
        ENV_DUMP + "cat leak.txt\necho 'postgres://app:hunter2@db/app' >&2\nexit 2\n",
    )
    parent = {
        "DUMP_DIR": str(dump),
        "POSTGRES_PASSWORD": CANARY,
        "DATABASE_URL": f"postgres://app:{CANARY}@db:5432/app",
    }
    lines: list[tuple[str, str]] = []
    run = runner(
        tmp_path,
        environ=parent,
        secrets=(SecretValue(CANARY, name="POSTGRES_PASSWORD"),),
        lines=lines,
    )

    with pytest.raises(HookFailed) as caught:
        run.pre("pre-deploy")

    dumped = (dump / "pre-deploy.env").read_text()
    assert CANARY not in dumped
    assert "POSTGRES_PASSWORD=" not in dumped and "DATABASE_URL=" not in dumped
    assert f"DUMP_DIR={dump}" in dumped
    assert lines == [
        ("pre-deploy", "the password is ***"),
        ("pre-deploy", "postgres://app:***@db/app"),
    ]
    shown = "\n".join([*caught.value.lines(), caught.value.hint or ""])
    assert CANARY not in shown and "hunter2" not in shown
    assert "  [hook pre-deploy] the password is ***" in caught.value.lines()


def test_a_failing_pre_hook_says_the_command_stopped_and_shows_its_last_lines(
    tmp_path: Path,
) -> None:
    write_hook(
        tmp_path, "pre-deploy", "#!/bin/sh\nfor i in $(seq 1 15); do echo line $i; done\nexit 3\n"
    )
    said: list[str] = []
    with pytest.raises(HookFailed) as caught:
        runner(tmp_path, lines=[], said=said).pre("pre-deploy")
    error = caught.value
    assert said == ["running hook pre-deploy"]
    assert error.message == (
        "hook pre-deploy exited with 3: deploy aborted before anything on the hosts changed"
    )
    assert error.returncode == 3 and error.exit_code == ExitCode.FAILED
    assert error.lines()[1:] == [f"  [hook pre-deploy] line {i}" for i in range(6, 16)]
    assert error.hint == (
        "the deploy lock is released; fix .stagecraft/hooks/pre-deploy, or deploy with --skip-hooks"
    )


def test_a_failing_post_hook_says_the_release_stays_recorded(tmp_path: Path) -> None:
    write_hook(tmp_path, "post-rollback", "#!/bin/sh\necho 'chat is down' >&2\nexit 1\n")
    with pytest.raises(HookFailed) as caught:
        runner(tmp_path, "rollback", lines=[]).post()
    assert caught.value.message == (
        "hook post-rollback exited with 1: the rollback itself succeeded: "
        "release 20261124T001500Z-v2 stays recorded as successful"
    )
    assert caught.value.tail == ("chat is down",)


def test_on_failure_gets_the_outcome_and_its_own_failure_is_only_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_hook(tmp_path, "on-failure", '#!/bin/sh\necho "outcome $STAGECRAFT_OUTCOME"\nexit 9\n')
    lines: list[tuple[str, str]] = []
    with caplog.at_level(logging.WARNING, logger="stagecraft"):
        runner(tmp_path, lines=lines).on_failure("interrupted")  # does not raise
    assert lines == [("on-failure", "outcome interrupted")]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "hook on-failure exited with 9 (the exit code stays that of the failed deploy)"
    ]


def test_a_hook_past_its_timeout_is_killed_with_its_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    write_hook(
        tmp_path,
        "pre-deploy",
        f"#!/bin/sh\necho started\nsleep 300 &\necho $! > {pid_file}\nwait\n",
    )
    started = time.monotonic()
    with pytest.raises(HookFailed) as caught:
        runner(tmp_path, lines=[], timeout=1).pre("pre-deploy")
    assert time.monotonic() - started < 30
    assert caught.value.message.startswith(
        "hook pre-deploy did not finish within 1s (its process group was killed)"
    )
    assert caught.value.returncode is None and caught.value.tail == ("started",)
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)  # poll: the kernel reaps the orphaned child
    assert not _alive(child), "the hook's background child survived the timeout"


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def test_a_hook_without_a_shebang_line_fails_with_the_fix(tmp_path: Path) -> None:
    write_hook(tmp_path, "pre-build", "echo no interpreter\n")
    with pytest.raises(HookFailed) as caught:
        runner(tmp_path).pre("pre-build")
    assert caught.value.message.startswith("hook pre-build could not be started: ")
    assert caught.value.hint == (
        "start .stagecraft/hooks/pre-build with a #! line, e.g. #!/bin/sh; "
        "the deploy lock is released; fix .stagecraft/hooks/pre-build, or deploy with --skip-hooks"
    )


def test_an_absent_hook_runs_nothing(tmp_path: Path) -> None:
    said: list[str] = []
    run = HookRunner(Hooks(tmp_path, "deploy"), CONTEXT, say=said.append)
    run.pre("pre-deploy")
    run.post()
    run.on_failure("failed")
    assert run.run("pre-build") is None and said == []


def _documented(marker: str) -> tuple[str, list[str]]:
    """The ``sh`` block after ``marker`` in docs/deploy.md, and the doc's error/hint lines."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    after = text[text.index(marker) :]
    script = re.search(r"```sh\n(.*?)```", after, re.S)
    assert script is not None, "the documented hook is missing"
    shown = [
        line
        for line in after.splitlines()
        if line.startswith(("error: hook pre-deploy", "error:   [hook", "hint: the deploy lock"))
    ]
    return script[1], shown


def test_the_documented_pre_deploy_hook(tmp_path: Path) -> None:
    script, shown = _documented(
        "doctest: tested-by tests/unit/deploy/test_hooks.py::test_the_documented_pre_deploy_hook"
    )
    write_hook(tmp_path, "pre-deploy", script)
    lines: list[tuple[str, str]] = []
    runner(tmp_path, lines=lines).pre("pre-deploy")
    assert lines == [
        (
            "pre-deploy",
            "alice@laptop deploys v2 (20261124T001500Z-v2) to production on web-1,web-2,data-1",
        )
    ]

    (tmp_path / "DEPLOY_FREEZE").write_text("release week\n")
    lines.clear()
    with pytest.raises(HookFailed) as caught:
        runner(tmp_path, lines=lines).pre("pre-deploy")
    assert lines == [("pre-deploy", "production is frozen: release week")]
    rendered = [f"error: {line}" for line in caught.value.lines()]
    assert [*rendered, f"hint: {caught.value.hint}"] == shown  # what the doc shows
